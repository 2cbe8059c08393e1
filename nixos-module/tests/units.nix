# Prints (builtins.trace, raw) the unit files the modules render for eval.nix's hosts, as a bash
# fragment: run.sh writes them out and runs the real systemd-analyze verify/security on them.
{ tp, libDir ? tp + "/lib/lib", microvmDir ? tp + "/microvm" }:
let
  h = import ./harness.nix { inherit libDir microvmDir; };
  inherit (h) lib;
  decl = { credentials = { API_KEY = "/run/secrets/web/api-key"; DB_PASSWORD = "/run/secrets/web/db-password"; }; settings.ENVIRONMENT = "production"; };
  host = h.eval [ h.microvmHost {
    microvm.vms.web.config.microvm = { hypervisor = "cloud-hypervisor"; vsock.cid = 5;
      shares = [ { proto = "virtiofs"; tag = "ro-store"; source = "/nix/store"; mountPoint = "/nix/.ro-store"; } ]; };
    services.credlink.host.vms.web = decl;
    services.credlink.host.vms.chv = decl // { cloudHypervisorArgs = [ "--cpus" "boot=1" "--kernel" "/var/lib/vms/chv/vmlinux" ]; };
  } ];
  guest = h.evalGuest [ { services.credlink.guest = { enable = true; manifest.credentials.API_KEY.bytes = 44; }; } ];
  # microvm.nix's units (templates, and the instance drop-ins it writes for web) with credlink's
  # drop-in merged into microvm@web; the drop-in again as a template drop-in for the score.
  microvmUnits = lib.mapAttrs' (n: v: lib.nameValuePair
      (if lib.hasSuffix "@" n then "microvm/${n}.service" else "microvm/${n}.service.d/overrides.conf") v.unitText)
    (lib.filterAttrs (n: _: lib.hasPrefix "microvm" n) host.systemd.services);
  files = microvmUnits // {
    "microvm-score/microvm@.service" = host.systemd.services."microvm@".unitText;
    "microvm-score/microvm@.service.d/overrides.conf" = host.systemd.services."microvm@web".unitText;
    "standalone/credlink-vm-chv.service" = host.systemd.services."credlink-vm-chv".unitText;
    "guest/guest-agent.service" = guest.systemd.services.guest-agent.unitText;
  };
  frag = lib.concatStrings (lib.mapAttrsToList (n: t: "unit_files+=(${lib.escapeShellArg n})\nunit_texts+=(${lib.escapeShellArg t})\n") files);
in
builtins.trace (builtins.unsafeDiscardStringContext ("#CREDLINK-UNITS-BEGIN\n" + frag + "#CREDLINK-UNITS-END\n")) 0
