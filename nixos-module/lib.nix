# Pure helpers of the credlink NixOS module: builtins only, so tests evaluate them on their own.
rec {
  # Quotes one ExecStart= argument for systemd: "…" with \ and " escaped, % and $ doubled, so
  # that systemd passes it through unchanged (systemd.service(5), "Command lines").
  escapeArg = arg:
    let s = toString arg;
    in if builtins.match "[A-Za-z0-9_./:=@+,-]+" s != null then
      s
    else
      "\"" + builtins.replaceStrings [ "\\" "\"" "%" "$" ] [ "\\\\" "\\\"" "%%" "$$" ] s + "\"";

  execLine = args: builtins.concatStringsSep " " (map escapeArg args);

  # Go duration (the subset host-launcher's flags document: h, m, s, ms, e.g. "5m", "1m30s")
  # → whole seconds, rounded up. Anything else throws; the option type rejects it earlier.
  durationPattern = "([0-9]+(h|m|s|ms))+";
  durationSeconds = d:
    let
      parts = builtins.filter builtins.isList (builtins.split "([0-9]+)(ms|h|m|s)" d);
      ms = { h = 3600000; m = 60000; s = 1000; ms = 1; };
      total = builtins.foldl' (acc: p: acc + builtins.fromJSON (builtins.elemAt p 0) * ms.${builtins.elemAt p 1}) 0 parts;
    in
    if builtins.match durationPattern d == null then throw "credlink: not a duration: ${d}"
    else (total + 999) / 1000;

  # systemd credential names (systemd src/basic/creds-util.c credential_name_valid, plus the
  # separators our flags and LoadCredential= use): printable ASCII without / : = and space,
  # not "." or "..", at most 255 bytes.
  validCredentialName = n:
    builtins.match "[!-~]+" n != null && builtins.match ".*[/:=].*" n == null
    && n != "." && n != ".." && builtins.stringLength n <= 255;

  # LoadCredential= lines: one per credential, ID:PATH with ID = the credential's name (systemd
  # reads PATH as root before dropping privileges).
  loadCredentials = credentials:
    map (name: "${name}:${toString credentials.${name}}") (builtins.attrNames credentials);

  # guest-agent's command line.
  guestArgs = { agent, manifestFile, source, credentialsDir ? null, metricsAddress, metricsPort, systemdVersion ? null, extraArgs ? [ ] }:
    [ agent "run" "--source" source "--manifest" manifestFile
      "--metrics-listen" (if metricsPort == null then "" else "${metricsAddress}:${toString metricsPort}") ]
    # Known when the system is built: spares the agent running `systemctl --version` (a fork and
    # exec of a dynamically linked program) before its acknowledgement.
    ++ (if systemdVersion == null then [ ] else [ "--systemd-version" systemdVersion ])
    ++ (if credentialsDir == null then [ ] else [ "--credentials-dir" credentialsDir ])
    ++ extraArgs;

  # host-launcher's options for one VM, without the hypervisor part (common to every way the
  # module starts it). `--credential NAME=NAME`: the LoadCredential= ID is the name.
  launcherOptions = { name, vm, manifestFile ? null }:
    [ "--vm" name ]
    ++ builtins.concatLists (map (n: [ "--credential" "${n}=${n}" ]) (builtins.attrNames vm.credentials))
    ++ builtins.concatLists (map (k: [ "--set" "${k}=${vm.settings.${k}}" ]) (builtins.attrNames vm.settings))
    ++ (if manifestFile == null then [ ] else [ "--manifest" manifestFile ])
    ++ [ "--ack-timeout" vm.ackTimeout "--shutdown-timeout" vm.shutdownTimeout "--on-failure" vm.onFailure
         "--runtime-dir" "/run/credlink/${name}" ]
    ++ (if vm.guestCid == null then [ ] else [ "--guest-cid" (toString vm.guestCid) ])
    ++ vm.extraArgs;
}
