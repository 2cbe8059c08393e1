# Evaluates credlink's NixOS modules with the REAL nixpkgs lib.evalModules and the REAL
# microvm.nix host module, guest modules and runners (snapshots in shared/third-party, unpacked by
# run.sh into `tp`), on top of a stand-in for the rest of NixOS and nixpkgs (./stand-in).
#   nix-instantiate --store dummy:// --eval --strict --json tests/eval.nix --arg tp DIR
# Result: { passed; failed = [ names ]; shapes = { NAME = { args; command; manifest; expect; }; }; }
# `shapes` feeds run.sh's check of host-launcher's translation (plan-check.nix).
{ tp ? null, libDir ? tp + "/lib/lib", microvmDir ? tp + "/microvm" }:
let
  h = import ./harness.nix { inherit libDir microvmDir; };
  helpers = import ../lib.nix;
  inherit (h) lib mkPkgs pkgs microvmHost microvmLib eval;
  failedAssertions = cfg: map (a: a.message) (builtins.filter (a: !a.assertion) cfg.assertions);
  # Does evaluating `x` deeply throw (a type error, a conflict)?
  throws = x: !(builtins.tryEval (builtins.deepSeq x x)).success;
  # (Nix 2.8's builtins.match refuses strings with store-path context.)
  d = builtins.unsafeDiscardStringContext;
  contains = needle: hay: lib.hasInfix (d needle) (d hay);
  lines = text: builtins.filter (l: l != "") (lib.splitString "\n" text);
  hasLine = l: text: builtins.elem l (lines text);
  countPrefix = p: text: builtins.length (builtins.filter (lib.hasPrefix p) (lines text));

  secrets = {
    API_KEY = "/run/secrets/web/api-key";
    DB_PASSWORD = "/run/secrets/web/db-password";
    JWT_SECRET = "/run/secrets/web/jwt-secret";
  };
  plain = { ENVIRONMENT = "production"; CLUSTER = "eu-west"; };
  manifest = {
    credentials = {
      API_KEY.bytes = 44; DB_PASSWORD.bytes = 64; JWT_SECRET = { min_bytes = 64; max_bytes = 128; };
      ENVIRONMENT.secret = false; CLUSTER.secret = false;
    };
    unexpected = "warn";
  };

  # --- guests (microvm.nix declarations) ------------------------------------------------------
  guests = {
    # volumes + virtiofs + tap, vsock.cid set (microvm.nix then adds vmm.notify_socket + socat)
    web = {
      microvm = {
        hypervisor = "cloud-hypervisor"; vcpu = 2; mem = 1024; vsock.cid = 5;
        # two volumes: cloud-hypervisor's clap syntax puts both after one --disk
        volumes = [ { image = "web-var.img"; mountPoint = "/var"; size = 2048; }
                    { image = "/var/lib/data/web-db.img"; mountPoint = "/db"; size = 512; readOnly = true; serial = "db0"; autoCreate = false; } ];
        shares = [ { proto = "virtiofs"; tag = "ro-store"; source = "/nix/store"; mountPoint = "/nix/.ro-store"; } ];
        interfaces = [ { type = "tap"; id = "vm-web"; mac = "02:00:00:00:00:01"; } ];
      };
    };
    # macvtap with two queue pairs (descriptors 3 and 4), no vsock.cid
    mac = {
      microvm = {
        hypervisor = "cloud-hypervisor"; vcpu = 2; mem = 512;
        shares = [ { proto = "virtiofs"; tag = "ro-store"; source = "/nix/store"; mountPoint = "/nix/.ro-store"; } ];
        interfaces = [ { type = "macvtap"; id = "vm-mac"; mac = "02:00:00:00:00:02"; macvtap = { link = "eth0"; mode = "bridge"; }; } ];
      };
    };
    # balloon + vsock, store on a disk image
    bal = {
      microvm = {
        hypervisor = "cloud-hypervisor"; vcpu = 4; mem = 1536; vsock.cid = 7;
        balloon = true; initialBalloonMem = 256; deflateOnOOM = true;
        storeOnDisk = true;
      };
    };
    # qemu on q35 (has SMBIOS)
    q35 = { microvm = { hypervisor = "qemu"; qemu.machine = "q35"; vcpu = 1; mem = 512; vsock.cid = 11;
      interfaces = [ { type = "tap"; id = "vm-q35"; mac = "02:00:00:00:00:04"; } ];
      shares = [ { proto = "virtiofs"; tag = "ro-store"; source = "/nix/store"; mountPoint = "/nix/.ro-store"; } ]; }; };
    # qemu on microvm.nix's default -M microvm (no SMBIOS): refused
    qmicro = { microvm = { hypervisor = "qemu"; vcpu = 1; mem = 512;
      shares = [ { proto = "virtiofs"; tag = "ro-store"; source = "/nix/store"; mountPoint = "/nix/.ro-store"; } ]; }; };
  };
  vmDecl = extra: { credentials = secrets; settings = plain; inherit manifest; } // extra;

  host = eval [
    microvmHost
    {
      microvm.vms = lib.mapAttrs (_: g: { config = g; }) { inherit (guests) web mac bal q35; }
        // { nocred = { config = guests.mac; }; };
      services.credlink.host.vms = {
        web = vmDecl { };
        mac = vmDecl { guestCid = 9; };
        bal = vmDecl { ackTimeout = "90s"; shutdownTimeout = "1m"; };
        q35 = vmDecl { };
        # outside microvm.vms, on the same host
        plain = vmDecl { vmConfig = { payload = { kernel = "/var/lib/vms/plain/vmlinux"; cmdline = "console=ttyS0"; }; memory.size = 536870912; }; };
      };
    }
  ];
  guestOf = name: host.microvm.vms.${name}.config.config;
  svc = name: host.systemd.services.${name};
  unitOf = name: (svc name).unitText;

  # microvm.nix's runner, evaluated by its real lib/runner.nix with script-writing builders that
  # inline each script's text (instead of a store path), so microvm-run's text can be read.
  runnerText = name:
    let
      g = guestOf name;
      inline = name: text: "\n#>>> ${name}\n${text}\n#<<< ${name}\n";
      hp = g.microvm.vmHostPackages // {
        writeShellScript = inline;
        buildPackages = g.microvm.vmHostPackages // { runCommand = _: _: script: script; };
      };
      out = import (microvmDir + "/lib/runner.nix") {
        inherit pkgs;
        microvmConfig = g.microvm // { inherit (g.networking) hostName; inherit (g.microvm) hypervisor; vmHostPackages = hp; };
        toplevel = g.system.build.toplevel;
      };
      part = script: let a = lib.splitString "#>>> ${script}\n" out; in
        builtins.head (lib.splitString "\n#<<< ${script}" (builtins.elemAt a 1));
    in
    { run = part "microvm-${name}-microvm-run"; whole = out; };
  # The hypervisor command microvm-run execs, and the macvtap descriptors it opens first: the
  # same calls runner.nix makes.
  runnerParts = name:
    let
      g = guestOf name;
      mc = g.microvm // { inherit (g.networking) hostName; inherit (g.microvm) hypervisor; };
      mt = microvmLib.makeMacvtap { microvmConfig = mc; hypervisorConfig = hc; };
      hc = import (microvmDir + "/lib/runners/${g.microvm.hypervisor}.nix") {
        inherit pkgs; microvmConfig = mc;
        inherit (microvmLib) withDriveLetters extractOptValues extractParamValue;
        inherit (mt) macvtapFds;
        linuxTarget = "bzImage";
      };
    in
    { inherit (hc) command; fds = lib.concatLists (lib.attrValues (removeAttrs mt.macvtapFds [ "nextFreeFd" ])); };
  hypervisorCommand = name: (runnerParts name).command;
  wrapperOf = name: let g = guestOf name; in
    if g.microvm.hypervisor == "qemu" then g.microvm.qemu.package else g.microvm.cloud-hypervisor.package;

  # All Exec*= values of every unit of a configuration, plus the scripts they run.
  execTexts = cfg: lib.concatLists (lib.mapAttrsToList (_: s:
    lib.concatLists (lib.mapAttrsToList (k: v: if lib.hasPrefix "Exec" k then map toString (lib.toList v) else [ ]) s.serviceConfig)) cfg.systemd.services);
  noSecretPath = texts: builtins.all (t: builtins.all (p: !(contains p t)) (builtins.attrValues secrets)) texts;

  # --- standalone host (no microvm.nix) -------------------------------------------------------
  solo = eval [ {
    services.credlink.host.vms = {
      chv = vmDecl { cloudHypervisorArgs = [ "--cpus" "boot=2" "--memory" "size=1024M" "--kernel" "/var/lib/vms/chv/vmlinux" "--cmdline" "console=ttyS0" ]; guestCid = 12; };
      qvm = vmDecl { hypervisor = "qemu"; qemuArgs = [ "-machine" "q35,accel=kvm" "-m" "1024" "-kernel" "/var/lib/vms/qvm/bzImage" "-append" "console=ttyS0 quiet" ]; };
    };
  } ];
  soloUnit = (solo.systemd.services."credlink-vm-chv").unitText;

  # --- guest module -----------------------------------------------------------------------------
  guestEval = h.evalGuest;
  guestCfg = guestEval [ { services.credlink.guest = { enable = true; inherit manifest; openFirewall = true; }; }
                         { services.credlink.guest.manifest.credentials.EXTRA.bytes = 8; } ];
  guestUnit = guestCfg.systemd.services.guest-agent.unitText;

  # --- refusals ---------------------------------------------------------------------------------
  refused = modules: failedAssertions (eval ([ microvmHost ] ++ modules));
  refusedAlone = modules: failedAssertions (eval modules);
  oneVm = name: g: decl: { microvm.vms.${name}.config = g; services.credlink.host.vms.${name} = decl; };
  assertionCases = {
    qemu-microvm-machine = [ (oneVm "qmicro" guests.qmicro (vmDecl { })) ];
    flake-vm-without-module = [ { microvm.vms.fl.flake = { outPath = "/var/empty/flake"; nixosConfigurations.fl = flakeGuest [ ]; }; services.credlink.host.vms.fl = vmDecl { }; } ];
    firecracker = [ (oneVm "fc" { microvm.hypervisor = "firecracker"; } (vmDecl { })) ];
    qemu-macvtap = [ (oneVm "qmv" (lib.recursiveUpdate guests.q35 { microvm.interfaces = guests.mac.microvm.interfaces; }) (vmDecl { })) ];
    cid-reserved-microvm = [ (oneVm "cr" (lib.recursiveUpdate guests.web { microvm.vsock.cid = 2; }) (vmDecl { })) ];
    credential-files-too = [ (oneVm "cf" (lib.recursiveUpdate guests.q35 { microvm.credentialFiles.X = "/run/x"; }) (vmDecl { })) ];
    oem-credentials-on-cmdline = [ (oneVm "oem" (lib.recursiveUpdate guests.mac { microvm.cloud-hypervisor.platformOEMStrings = [ "io.systemd.credential:X=1" ]; }) (vmDecl { })) ];
    cid-mismatch = [ (oneVm "cid" guests.web (vmDecl { guestCid = 6; })) ];
    hypervisor-mismatch = [ (oneVm "hm" guests.web (vmDecl { hypervisor = "qemu"; })) ];
    vmconfig-for-microvm = [ (oneVm "vc" guests.web (vmDecl { vmConfig = { }; })) ];
    empty-vm = [ (oneVm "e" guests.web { }) ];
    bad-name = [ (oneVm "bn" guests.web (vmDecl { settings = { "A=B" = "x"; }; })) ];
    both-credential-and-setting = [ (oneVm "bs" guests.web (vmDecl { settings = { API_KEY = "x"; }; })) ];
  };
  assertionAloneCases = {
    chv-without-config = [ { services.credlink.host.vms.x = vmDecl { }; } ];
    chv-both-configs = [ { services.credlink.host.vms.x = vmDecl { vmConfig = { }; cloudHypervisorArgs = [ "--cpus" "boot=1" ]; }; } ];
    qemu-without-args = [ { services.credlink.host.vms.x = vmDecl { hypervisor = "qemu"; }; } ];
    qemu-microvm-args = [ { services.credlink.host.vms.x = vmDecl { hypervisor = "qemu"; qemuArgs = [ "-M" "microvm" ]; }; } ];
  };
  expectedMessages = {
    qemu-microvm-machine = "builds no SMBIOS tables";
    flake-vm-without-module = "does not import credlink's microvm-guest module";
    firecracker = "uses firecracker, which has no SMBIOS";
    qemu-macvtap = "passes macvtap interfaces to qemu as inherited descriptors";
    cid-reserved-microvm = "microvm.vsock.cid = 2 is reserved";
    credential-files-too = "credentialFiles is set as well";
    oem-credentials-on-cmdline = "carries systemd credentials on cloud-hypervisor's command line";
    cid-mismatch = "guestCid = 6 but microvm.vms.cid.config.microvm.vsock.cid = 5";
    hypervisor-mismatch = "leave hypervisor unset for microvm.nix VMs";
    vmconfig-for-microvm = "are for VMs outside microvm.nix";
    empty-vm = "declares neither credentials nor settings";
    bad-name = "invalid credential name(s) A=B";
    both-credential-and-setting = "API_KEY is both a credential and a setting";
    chv-without-config = "needs exactly one of vmConfig";
    chv-both-configs = "needs exactly one of vmConfig";
    qemu-without-args = "qemu outside microvm.nix needs qemuArgs";
    qemu-microvm-args = "microvm machine, which has no SMBIOS";
  };
  assertionResults = lib.mapAttrs (_: refused) assertionCases // lib.mapAttrs (_: refusedAlone) assertionAloneCases;

  # --- package.nix ------------------------------------------------------------------------------
  pkgWith = args: (mkPkgs args).callPackage ../package.nix { };

  webRun = (runnerText "web").run;
  webWrapper = wrapperOf "web";
  webLaunch = host.services.credlink.host.vms.web.launchScript;
  launchOpts = name: (import ../lib.nix).launcherOptions { inherit name; vm = host.services.credlink.host.vms.${name};
    manifestFile = builtins.head (builtins.match ".*--manifest ([^ ]+).*" (d host.services.credlink.host.vms.${name}.launchScript.text)); };

  # A VM microvm.nix builds from a flake: the guest imports microvm-guest.nix itself.
  flakeGuest = extra: import ./stand-in/nixpkgs/nixos/lib/eval-config.nix {
    inherit pkgs;
    modules = [ (microvmDir + "/nixos-modules/microvm") { networking.hostName = "fl"; } guests.web ] ++ extra;
  };
  flakeHost = eval [ microvmHost {
    microvm.vms.fl.flake = { outPath = "/var/empty/flake"; nixosConfigurations.fl = flakeGuest [ ../microvm-guest.nix ]; };
    services.credlink.host.vms.fl = vmDecl { };
  } ];

  cases = {
    # standalone host
    solo-unit-exists = solo.systemd.services ? "credlink-vm-chv" && solo.systemd.services ? "credlink-vm-qvm";
    solo-no-assertion = failedAssertions solo == [ ];
    solo-exec-chv = (svc' solo "credlink-vm-chv").serviceConfig.ExecStart
      == lib.concatStringsSep " " [ "${solo.services.credlink.host.package}/bin/host-launcher" "run" "--hypervisor" "cloud-hypervisor"
        "--cloud-hypervisor" "${pkgs.cloud-hypervisor}/bin/cloud-hypervisor" "--vm" "chv"
        "--credential" "API_KEY=API_KEY" "--credential" "DB_PASSWORD=DB_PASSWORD" "--credential" "JWT_SECRET=JWT_SECRET"
        "--set" "CLUSTER=eu-west" "--set" "ENVIRONMENT=production"
        "--manifest" "${builtins.head (builtins.match ".*--manifest ([^ ]+).*" (d (svc' solo "credlink-vm-chv").serviceConfig.ExecStart))}"
        "--ack-timeout" "5m" "--shutdown-timeout" "30s" "--on-failure" "stop" "--runtime-dir" "/run/credlink/chv" "--guest-cid" "12"
        "--" "--cpus" "boot=2" "--memory" "size=1024M" "--kernel" "/var/lib/vms/chv/vmlinux" "--cmdline" "console=ttyS0" ];
    solo-exec-qemu-full-path = contains "--qemu ${pkgs.qemu_kvm}/bin/qemu-system-x86_64 " (svc' solo "credlink-vm-qvm").serviceConfig.ExecStart;
    solo-exec-qemu-quoting = lib.hasSuffix "-- -machine q35,accel=kvm -m 1024 -kernel /var/lib/vms/qvm/bzImage -append \"console=ttyS0 quiet\"" (svc' solo "credlink-vm-qvm").serviceConfig.ExecStart;
    solo-type-notify = hasLine "Type=notify" soloUnit && hasLine "NotifyAccess=main" soloUnit;
    solo-load-credentials = hasLine "LoadCredential=API_KEY:/run/secrets/web/api-key" soloUnit && hasLine "LoadCredential=JWT_SECRET:/run/secrets/web/jwt-secret" soloUnit;
    solo-restart = hasLine "Restart=on-failure" soloUnit && hasLine "RestartPreventExitStatus=1 2" soloUnit;
    solo-timeouts = hasLine "TimeoutStartSec=360s" soloUnit && hasLine "TimeoutStopSec=45s" soloUnit && hasLine "KillMode=mixed" soloUnit;
    solo-instance-substituted = hasLine "RuntimeDirectory=credlink/chv" soloUnit && !(contains "%i" soloUnit) && hasLine "Description=credlink VM chv" soloUnit;
    solo-no-environment-file = !(contains "EnvironmentFile" soloUnit);
    solo-no-secret-in-exec = noSecretPath (execTexts solo);
    # the unit = systemd/credlink-vm@.service, key by key, except what the module documents it sets
    solo-matches-file = sameAsFile (import ../units.nix).vmStandalone.Service [ "ExecStart" "EnvironmentFile" "TimeoutStartSec" "TimeoutStopSec" ] [ "%i" ] [ "chv" ] soloUnit;

    # microvm.nix host: the drop-in for microvm@web
    ch-vsock-no-assertion = failedAssertions host == [ ];
    ch-dropin-type-notify-once = countPrefix "Type=" (unitOf "microvm@web") == 1 && hasLine "Type=notify" (unitOf "microvm@web");
    ch-novsock-type-notify = hasLine "Type=notify" (unitOf "microvm@mac") && !(contains "Type=simple" (unitOf "microvm@mac"));
    ch-notify-access-main = hasLine "NotifyAccess=main" (unitOf "microvm@web");
    ch-load-credentials = builtins.all (n: hasLine "LoadCredential=${n}:${secrets.${n}}" (unitOf "microvm@web")) (builtins.attrNames secrets);
    ch-restart-prevent = hasLine "RestartPreventExitStatus=1 2" (unitOf "microvm@web");
    ch-timeout-start-from-ack = hasLine "TimeoutStartSec=360s" (unitOf "microvm@web") && hasLine "TimeoutStartSec=180s" (unitOf "microvm@bal");
    ch-graceful-stop = hasLine "KillMode=mixed" (unitOf "microvm@web") && hasLine "ExecStop=" (unitOf "microvm@web")
      && hasLine "TimeoutStopSec=45s" (unitOf "microvm@web") && hasLine "TimeoutStopSec=75s" (unitOf "microvm@bal");
    ch-dropin-keeps-runner = !(contains "ExecStart=" (unitOf "microvm@web")) && (svc "microvm@web").overrideStrategy == "asDropin";
    ch-dropin-state-dir = hasLine "ReadWritePaths=/var/lib/microvms/web" (unitOf "microvm@web") && hasLine "RuntimeDirectory=credlink/web" (unitOf "microvm@web");
    ch-dropin-matches-file = sameAsFile (import ../units.nix).microvmDropin.Service [ "ExecStart" "Type" "TimeoutStartSec" "TimeoutStopSec" ] [ "%i" ] [ "web" ] (unitOf "microvm@web");
    template-untouched = let t = unitOf "microvm@"; in hasLine "ExecStart=/var/lib/microvms/%i/current/bin/microvm-run" t
      && hasLine "User=microvm" t && hasLine "Restart=always" t && hasLine "NotifyAccess=all" t && hasLine "Type=simple" t
      && !(contains "credlink" t) && !(contains "LoadCredential" t);
    other-microvm-untouched = !(contains "credlink" (unitOf "microvm@nocred")) && (wrapperOf "nocred") ? credlink == false;
    no-secret-in-exec = noSecretPath (execTexts host ++ [ webRun webWrapper.credlink.script.text webLaunch.text ]
      ++ map (n: (svc "microvm@${n}").environment.CREDLINK_LAUNCH) [ "web" "mac" "bal" "q35" ]);

    # the ExecStart chain: microvm@ → microvm-run (microvm.nix) → wrapper (guest package)
    #   → $CREDLINK_LAUNCH (host drop-in) → host-launcher
    chain-run-execs-wrapper = contains "exec -a \"microvm@web\" ${webWrapper}/bin/cloud-hypervisor " webRun;
    chain-run-keeps-prestart = contains "rm -f 'web.sock'" webRun && contains "web-var.img" webRun;
    chain-macvtap-fds = contains "exec 3<>/dev/tap$(< /sys/class/net/vm-mac/ifindex)" (runnerText "mac").run
      && contains "exec 4<>/dev/tap$(< /sys/class/net/vm-mac/ifindex)" (runnerText "mac").run && (runnerParts "mac").fds == [ 3 4 ];
    chain-command-is-wrapper = lib.hasPrefix "${webWrapper}/bin/cloud-hypervisor " (hypervisorCommand "web");
    chain-wrapper-script = let t = webWrapper.credlink.script.text; real = "${pkgs.cloud-hypervisor}/bin/cloud-hypervisor"; in
      contains "then exec \"$CREDLINK_LAUNCH\" cloud-hypervisor ${real} \"$@\"; fi" t && lib.hasSuffix "exec ${real} \"$@\"\n" t;
    # a guest that sets microvm.cloud-hypervisor.package itself is an error, not silently replaced
    own-hypervisor-package-conflicts = throws (eval [ microvmHost (oneVm "ohp" (lib.recursiveUpdate guests.mac { microvm.cloud-hypervisor.package = pkgs.cloud-hypervisor-graphics; }) (vmDecl { })) ]).microvm.vms.ohp.config.config.microvm.cloud-hypervisor.package.outPath;
    chain-own-package = let g = eval [ microvmHost (oneVm "own" (lib.recursiveUpdate guests.mac { services.credlink.microvm.cloud-hypervisor = pkgs.cloud-hypervisor-graphics; }) (vmDecl { })) ]; in
      contains "${pkgs.cloud-hypervisor-graphics}/bin/cloud-hypervisor" g.microvm.vms.own.config.config.microvm.cloud-hypervisor.package.credlink.script.text
      && failedAssertions g == [ ];
    chain-wrapper-version = webWrapper.version == pkgs.cloud-hypervisor.version;
    chain-wrapper-no-vm-data = (wrapperOf "web").outPath == (wrapperOf "mac").outPath;
    chain-launch-env = hasLine "Environment=\"CREDLINK_LAUNCH=${webLaunch}\"" (unitOf "microvm@web");
    chain-launch-script = contains "cloud-hypervisor) exec ${host.services.credlink.host.package}/bin/host-launcher run --hypervisor cloud-hypervisor --cloud-hypervisor \"$bin\" ${lib.escapeShellArgs (launchOpts "web")} -- \"$@\" ;;" webLaunch.text;
    chain-launch-manifest = builtins.elem "--manifest" (launchOpts "web") && lib.hasInfix "--guest-cid 9" (toString (launchOpts "mac"));
    chain-balloon-uses-real-ch-remote = contains "${wrapperOf "bal"}/bin/ch-remote --api-socket bal.sock resize --balloon" (runnerText "bal").whole
      && contains "ln -s \"$f\" $out/bin/" webWrapper.script;
    qemu-q35-wrapped = (wrapperOf "q35").credlink.hypervisor == "qemu"
      && lib.hasPrefix "${wrapperOf "q35"}/bin/qemu-system-x86_64 " (hypervisorCommand "q35")
      && contains "exec \"$CREDLINK_LAUNCH\" qemu ${pkgs.qemu_kvm}/bin/qemu-system-x86_64 " (wrapperOf "q35").credlink.script.text;
    flake-vm-with-module = failedAssertions flakeHost == [ ] && hasLine "Environment=\"CREDLINK_LAUNCH=${flakeHost.services.credlink.host.vms.fl.launchScript}\"" flakeHost.systemd.services."microvm@fl".unitText;
    qemu-dropin = hasLine "Type=notify" (unitOf "microvm@q35") && hasLine "LoadCredential=API_KEY:/run/secrets/web/api-key" (unitOf "microvm@q35");
    outside-microvm-vms = (svc "credlink-vm-plain").serviceConfig ? ExecStart
      && contains "--vm-config /nix/store/" (svc "credlink-vm-plain").serviceConfig.ExecStart
      && !(host.systemd.services ? "microvm@plain") && !(host.microvm.vms ? plain);

    readme-microvm = failedAssertions readme == [ ]
      && hasLine "LoadCredential=JWT_SECRET:/run/secrets/web/jwt-secret" readme.systemd.services."microvm@web".unitText
      && contains "--manifest /nix/store/" readme.services.credlink.host.vms.web.launchScript.text
      && readme.microvm.vms.web.config.config.microvm.cloud-hypervisor.package ? credlink
      && readme.microvm.vms.web.config.config.systemd.services ? guest-agent;
    readme-standalone = failedAssertions readmeSolo == [ ] && readmeSolo.systemd.services ? "credlink-vm-build";

    # core dumps off in every rendered unit (the files in systemd/ say LimitCORE=0)
    core-dumps-off = builtins.all (t: hasLine "LimitCORE=0" t) [ (unitOf "microvm@web") soloUnit guestUnit ];

    # refusals, each with its message
    assertions-fire = builtins.all (n: builtins.any (m: contains expectedMessages.${n} m) assertionResults.${n}) (builtins.attrNames expectedMessages);

    # option types
    secret-path-literal-refused = throws (eval [ { services.credlink.host.vms.x = vmDecl { credentials.K = ./eval.nix; }; } ]).services.credlink.host.vms.x.credentials;
    secret-store-path-refused = throws (eval [ { services.credlink.host.vms.x = vmDecl { credentials.K = "${pkgs.writeText "k" "v"}"; }; } ]).services.credlink.host.vms.x.credentials;
    secret-store-string-refused = throws (eval [ { services.credlink.host.vms.x = vmDecl { credentials.K = "/nix/store/aaaa-k"; }; } ]).services.credlink.host.vms.x.credentials;
    secret-relative-refused = throws (eval [ { services.credlink.host.vms.x = vmDecl { credentials.K = "run/k"; }; } ]).services.credlink.host.vms.x.credentials;
    secret-absolute-accepted = !(throws (eval [ { services.credlink.host.vms.x = vmDecl { }; } ]).services.credlink.host.vms.x.credentials);
    cid-reserved-refused = throws (eval [ { services.credlink.host.vms.x = vmDecl { guestCid = 2; }; } ]).services.credlink.host.vms.x.guestCid;
    cid-3-accepted = (eval [ { services.credlink.host.vms.x = vmDecl { guestCid = 3; }; } ]).services.credlink.host.vms.x.guestCid == 3;
    duration-refused = throws (eval [ { services.credlink.host.vms.x = vmDecl { ackTimeout = "5 minutes"; }; } ]).services.credlink.host.vms.x.ackTimeout;
    manifest-merges = (eval [ { services.credlink.host.vms.x = vmDecl { }; } { services.credlink.host.vms.x.manifest.credentials.EXTRA.bytes = 8; } ]).services.credlink.host.vms.x.manifest.credentials
      == manifest.credentials // { EXTRA.bytes = 8; };
    vmconfig-merges = (eval [ { services.credlink.host.vms.x.vmConfig.payload.kernel = "/k"; } { services.credlink.host.vms.x.vmConfig.memory.size = 1; } ]).services.credlink.host.vms.x.vmConfig
      == { payload.kernel = "/k"; memory.size = 1; };
    manifest-conflict-refused = throws (eval [ { services.credlink.host.vms.x.manifest.unexpected = "warn"; } { services.credlink.host.vms.x.manifest.unexpected = "fail"; } ]).services.credlink.host.vms.x.manifest;
    escape-plain = helpers.escapeArg "--vm" == "--vm";
    escape-space-quote = helpers.escapeArg "a \"b\"" == "\"a \\\"b\\\"\"";
    escape-percent-dollar = helpers.escapeArg "50% $HOME" == "\"50%% $$HOME\"";
    credential-names = map helpers.validCredentialName [ "API_KEY" "a.b-c" "." ".." "a/b" "a:b" "a=b" "a b" "" ] == [ true true false false false false false false false ];
    duration-seconds = map (import ../lib.nix).durationSeconds [ "5m" "90s" "1m30s" "1h" "1500ms" ] == [ 300 90 90 3600 2 ];

    # guest module = systemd/guest-agent.service + its ExecStart
    # the systemd the guest is built with, so the agent need not run systemctl --version
    guest-systemd-version = contains " --systemd-version ${lib.versions.major guestCfg.systemd.package.version}" guestCfg.systemd.services.guest-agent.serviceConfig.ExecStart
      && guestCfg.systemd.package.version != "";
    guest-exec = lib.hasPrefix "${guestCfg.services.credlink.guest.package}/bin/guest-agent run --source credentials --manifest /nix/store/" guestCfg.systemd.services.guest-agent.serviceConfig.ExecStart;
    guest-matches-file = sameAsFile (import ../units.nix).guestAgent.Service [ "ExecStart" "ExecStartPre" "ExecReload" ] [ ] [ ] guestUnit;
    guest-ip-restrictions = hasLine "IPAddressDeny=any" guestUnit && hasLine "Documentation=https://github.com/credlink/credlink#guest-agent" guestUnit;
    # every Exec*= of the NixOS unit runs from the store: no /usr/bin (the file's paths) left
    guest-wait-port-from-store = guestCfg.systemd.services.guest-agent.serviceConfig.ExecStartPre
      == "+${guestCfg.services.credlink.guest.package}/bin/guest-agent wait-port";
    guest-no-usr-bin = !(lib.hasInfix "/usr/bin/" guestUnit);
    guest-reload-store-kill = hasLine "ExecReload=${pkgs.coreutils}/bin/kill -HUP $MAINPID" guestUnit;
    guest-manifest-merges = guestCfg.services.credlink.guest.manifest.credentials.EXTRA.bytes == 8 && guestCfg.services.credlink.guest.manifest.credentials.API_KEY.bytes == 44;
    guest-firewall = guestCfg.networking.firewall.allowedTCPPorts == [ 9863 ];

    # package.nix
    package-go126-default = (pkgWith { goVersion = "1.26.2"; haveBuildGo126Module = false; }).builtWith == "buildGoModule (go 1.26.2)";
    package-go125-uses-126 = (pkgWith { goVersion = "1.25.4"; haveBuildGo126Module = true; }).builtWith == "buildGo126Module";
    package-go125-refused = throws (pkgWith { goVersion = "1.25.4"; haveBuildGo126Module = false; }).builtWith;
    package-src-only-sources = let
        files = map (f: lib.removePrefix (toString ../.. + "/") (toString f)) (lib.fileset.toList (pkgWith { }).goModuleArgs.passthru.sources);
        top = lib.unique (map (f: builtins.head (lib.splitString "/" f)) files);
      in lib.sort (a: b: a < b) top == [ "cmd" "go.mod" "go.sum" "pkg" ] && builtins.elem "cmd/host-launcher/main.go" files;
    package-subpackages = (pkgWith { }).goModuleArgs.subPackages == [ "cmd/guest-agent" "cmd/host-launcher" ];
  };

  svc' = cfg: name: cfg.systemd.services.${name};

  # README.md "microvm.nix + cloud-hypervisor" and "Standalone host", as printed there (with
  # `inputs.*` replaced by the files they name).
  readme = eval [ microvmHost {
    microvm.vms.web.config = {
      imports = [ ../guest.nix ];
      microvm.hypervisor = "cloud-hypervisor";
      microvm.shares = [ { proto = "virtiofs"; tag = "ro-store"; source = "/nix/store"; mountPoint = "/nix/.ro-store"; } ];
      services.credlink.guest = {
        enable = true;
        manifest = {
          credentials = {
            API_KEY.bytes = 44; DB_PASSWORD.bytes = 64; JWT_SECRET = { min_bytes = 64; max_bytes = 128; };
            ENVIRONMENT.secret = false; CLUSTER.secret = false;
          };
          unexpected = "warn";
        };
      };
      systemd.services.myapp = { requires = [ "guest-agent.service" ]; after = [ "guest-agent.service" ]; };
    };
    services.credlink.host.vms.web = {
      credentials = {
        API_KEY = "/run/secrets/web/api-key";
        DB_PASSWORD = "/run/secrets/web/db-password";
        JWT_SECRET = "/run/secrets/web/jwt-secret";
      };
      settings = { ENVIRONMENT = "production"; CLUSTER = "eu-west"; };
    };
  } ];
  readmeSolo = eval [ {
    services.credlink.host.vms.build = {
      credentials.API_KEY = "/run/secrets/build/api-key";
      settings.ENVIRONMENT = "ci";
      cloudHypervisorArgs = [ "--cpus" "boot=2" "--memory" "size=2048M" "--kernel" "/var/lib/vms/build/vmlinux"
        "--cmdline" "console=ttyS0 root=/dev/vda" "--disk" "path=/var/lib/vms/build/root.img" ];
    };
  } ];

  # Every key=value of a unit file's [Service] section (after substituting %i) appears in the
  # rendered unit exactly as often as in the file, except the keys the module sets itself.
  sameAsFile = fileService: ownKeys: from: to: text:
    let
      kept = removeAttrs fileService ownKeys;
      expected = lib.concatLists (lib.mapAttrsToList (k: v: map (x: "${k}=${builtins.replaceStrings from to x}") (lib.toList v)) kept);
      rendered = lines text;
    in
    builtins.all (l: builtins.length (builtins.filter (x: x == l) rendered) == builtins.length (builtins.filter (x: x == l) expected)) expected;

  failed = builtins.filter (n: !cases.${n}) (builtins.attrNames cases);

  # Inputs for run.sh's translation check: what the wrapper runs and what the command means.
  shape = name:
    let
      g = guestOf name;
      m = g.microvm;
      bin = if m.hypervisor == "qemu" then "qemu-system-x86_64" else "cloud-hypervisor";
    in
    {
      launch = host.services.credlink.host.vms.${name}.launchScript.text;
      wrapper = (wrapperOf name).credlink.script.text;
      wrapperPath = "${wrapperOf name}/bin/${bin}";
      run = (runnerText name).run;
      command = lib.removePrefix "${wrapperOf name}/bin/${bin} " (hypervisorCommand name);
      manifest = builtins.toJSON manifest;
      expect = {
        inherit (m) hypervisor;
        inherit (m) vcpu mem balloon initialBalloonMem deflateOnOOM storeOnDisk;
        storeDisk = if m.storeOnDisk then toString m.storeDisk else null;
        vsockCid = m.vsock.cid;
        guestCid = host.services.credlink.host.vms.${name}.guestCid;
        kernel = "${m.kernel.dev}/vmlinux";
        initramfs = m.initrdPath;
        kernelParams = m.kernelParams;
        volumes = map (v: { image = toString v.image; inherit (v) readOnly direct; serial = v.serial; }) m.volumes;
        shares = map (s: { inherit (s) tag socket; }) (builtins.filter (s: s.proto == "virtiofs") m.shares);
        interfaces = map (i: { inherit (i) type id mac; }) m.interfaces;
        virtiofs = builtins.any (s: s.proto == "virtiofs") m.shares;
        apiSocket = m.socket;
        realHypervisor = "${g.services.credlink.microvm.${m.hypervisor}}/bin/${bin}";
        credentials = builtins.attrNames secrets;
        settings = plain;
      };
    };
in
{
  passed = builtins.length (builtins.attrNames cases) - builtins.length failed;
  inherit failed;
  # three cloud-hypervisor shapes, and qemu on q35
  shapes = lib.genAttrs [ "web" "mac" "bal" "q35" ] shape;
}
