# STAND-IN for the nixpkgs package set: every package is a real Nix derivation (so store paths,
# string context and `${pkg}/bin/x` interpolation behave as in nixpkgs) whose builder is never
# run. Trivial builders keep their script text in an attribute (`text`) so tests can read what a
# wrapper or microvm.nix's runner would execute. `lib` is the real nixpkgs lib.
{ lib, nixpkgsPath, goVersion ? "1.26.3", haveBuildGo126Module ? true }:
let
  system = "x86_64-linux";
  mk = name: attrs: derivation ({ inherit name system; builder = "/bin/sh"; args = [ "-c" "exit 1" ]; } // attrs);
  # A package with an .override/.overrideAttrs that keep working (microvm.nix's qemu runner
  # calls both).
  pkg = name: version: extra:
    let d = mk "${name}-${version}" (extra // { pname = name; inherit version; });
    in d // {
      inherit version; pname = name;
      override = _: pkg name version extra;
      overrideAttrs = _: pkg name version extra;
      meta = { mainProgram = name; };
    };
  text = name: t: mk name { text = t; passAsFile = [ "text" ]; } // { text = t; };
  self = {
    _type = "pkgs";
    inherit lib system;
    path = nixpkgsPath;
    stdenv.hostPlatform = { inherit system; isLinux = true; isDarwin = false; linux-kernel.target = "bzImage"; };
    runtimeShell = "${self.bash}/bin/bash";
    bash = pkg "bash" "5.3" { };
    coreutils = pkg "coreutils" "9.8" { };
    findutils = pkg "findutils" "4.10" { };
    gnugrep = pkg "gnugrep" "3.12" { };
    gnused = pkg "gnused" "4.9" { };
    gawk = pkg "gawk" "5.3" { };
    systemd = pkg "systemd" "258" { };
    util-linux = pkg "util-linux" "2.41" { };
    curl = pkg "curl" "8.16" { };
    socat = pkg "socat" "1.8" { };
    python3 = pkg "python3" "3.13" { };
    e2fsprogs = pkg "e2fsprogs" "1.47" { };
    xfsprogs = pkg "xfsprogs" "6.16" { };
    btrfs-progs = pkg "btrfs-progs" "6.16" { };
    dosfstools = pkg "dosfstools" "4.2" { };
    virtiofsd = pkg "virtiofsd" "1.13" { };
    openssl = pkg "openssl" "3.5" { };
    # referenced by microvm.nix's guest modules (store disk, virtiofsd supervisor, interfaces)
    jq = pkg "jq" "1" { };
    coreutils-full = pkg "coreutils-full" "1" { };
    erofs-utils = pkg "erofs-utils" "1" { };
    bubblewrap = pkg "bubblewrap" "1" { };
    time = pkg "time" "1" { };
    closureInfo = _: pkg "closure-info" "1" { };
    writers.writePython3 = name: _: t: text name t;
    replaceVars = src: vars: text "replaced" (builtins.toJSON vars);
    python3Packages = { supervisor = pkg "supervisor" "4.2" { }; };
    iproute2 = pkg "iproute2" "1" { };
    cloud-hypervisor = pkg "cloud-hypervisor" "48.0" { };
    cloud-hypervisor-graphics = pkg "cloud-hypervisor-graphics" "48.0" { };
    qemu_kvm = pkg "qemu" "10.1" { };
    qemu = pkg "qemu" "10.1" { };
    qemu-utils = pkg "qemu-utils" "10.1" { };
    crosvm = pkg "crosvm" "1" { };
    firecracker = pkg "firecracker" "1" { };
    kvmtool = pkg "kvmtool" "1" { };
    stratovirt = pkg "stratovirt" "1" { };
    alioth = pkg "alioth" "1" { };
    vfkit = pkg "vfkit" "1" { };
    linux = let k = pkg "linux" "6.12.50" { outputs = [ "out" "dev" ]; }; in k // { kernel = k; target = "bzImage"; };
    go = pkg "go" goVersion { };

    buildPackages = self;
    writeText = text;
    writeShellScript = name: t: text name "#!${self.runtimeShell}\n${t}";
    writeShellScriptBin = name: t: mk name { text = t; passAsFile = [ "text" ]; } // { text = t; };
    runCommand = name: env: script: mk name ({ inherit script; } // builtins.removeAttrs env [ "passthru" "meta" ])
      // (env.passthru or { }) // { passthru = env.passthru or { }; meta = env.meta or { }; inherit script; };
    # buildGoModule stand-in: records its arguments (tests read them), builds nothing.
    buildGoModule = args: mk "${args.pname}-${args.version}" { inherit (args) pname version; } // { goModuleArgs = args; builtWith = "buildGoModule (go ${goVersion})"; };
    runCommandLocal = self.runCommand;
    writeClosure = _: text "closure" "";
    writeReferencesToFile = _: text "references" "";
    callPackage = lib.callPackageWith self;
  } // lib.optionalAttrs haveBuildGo126Module {
    buildGo126Module = args: mk "${args.pname}-${args.version}" { inherit (args) pname version; } // { goModuleArgs = args; builtWith = "buildGo126Module"; };
  };
in
self
