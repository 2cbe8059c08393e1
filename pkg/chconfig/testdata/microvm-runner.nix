# Evaluates microvm.nix's real lib/runners/cloud-hypervisor.nix (with its real lib/default.nix
# helpers and lib/macvtap.nix) for the three VM shapes of testdata/microvm-*.argv; pkgs is a
# stand-in holding store paths. Run by TestMicrovmRunnerArgv (microvm_test.go).
{ microvm, nixpkgsLib }:
let
  lib = import (nixpkgsLib + "/lib");
  mlib = import (microvm + "/lib") { inherit lib; };
  pkgs = {
    inherit lib;
    stdenv.hostPlatform.system = "x86_64-linux";
    socat = "/nix/store/ffff-socat"; curl = "/nix/store/gggg-curl"; util-linux = "/nix/store/hhhh-util-linux";
  };
  base = name: {
    hostName = name; vcpu = 1; mem = 512; balloon = false; initialBalloonMem = 0; deflateOnOOM = false;
    hotplugMem = 0; hotpluggedMem = 0; user = null; interfaces = []; volumes = []; shares = [];
    socket = "${name}.sock"; devices = []; hugepageMem = false; graphics.enable = false;
    storeDisk = "/nix/store/eeee-microvm-store-disk.erofs"; storeOnDisk = false;
    kernel.dev = "/nix/store/aaaa-linux-6.12.30-dev"; initrdPath = "/nix/store/bbbb-initrd-linux-6.12.30/initrd";
    credentialFiles = {}; vsock.cid = null; preStart = "";
    kernelParams = [ "root=fstab" "loglevel=4" "init=/nix/store/cccc-nixos-system-${name}-25.11/init" "regInfo=/nix/store/dddd-closure-info/registration" ];
    cloud-hypervisor = { platformOEMStrings = []; extraArgs = []; package = { outPath = "/nix/store/iiii-cloud-hypervisor-50.0"; version = "50.0"; }; };
  };
  run = cfg:
    let
      macvtap = mlib.makeMacvtap { microvmConfig = cfg; hypervisorConfig = { tapMultiQueue = cfg.vcpu > 1; }; };
      r = import (microvm + "/lib/runners/cloud-hypervisor.nix") {
        inherit pkgs; microvmConfig = cfg; inherit (macvtap) macvtapFds;
        inherit (mlib) extractOptValues extractParamValue withDriveLetters; linuxTarget = "bzImage";
      };
    in r.command;
in {
  volumes-virtiofs-tap = run (base "web" // {
    vcpu = 2; mem = 1024;
    volumes = [ { image = "var.img"; serial = null; direct = false; readOnly = false; imageType = "raw"; } ];
    shares = [ { proto = "virtiofs"; socket = "web-virtiofs-ro-store.sock"; tag = "ro-store"; } ];
    interfaces = [ { type = "tap"; id = "vm-web"; mac = "02:00:00:00:00:01"; } ];
  });
  macvtap = run (base "mvt" // {
    vcpu = 2; storeOnDisk = true;
    interfaces = [ { type = "macvtap"; id = "vm-mvt"; mac = "02:00:00:00:00:02"; } ];
  });
  balloon-vsock = run (base "bal" // {
    mem = 2048; balloon = true; initialBalloonMem = 512; deflateOnOOM = true; storeOnDisk = true; vsock.cid = 5;
    volumes = [ { image = "data.img"; serial = "data"; direct = false; readOnly = false; imageType = "raw"; } ];
    cloud-hypervisor = (base "bal").cloud-hypervisor // { platformOEMStrings = [ "hello" ]; };
  });
}
