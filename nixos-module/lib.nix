# Pure helpers of the credlink NixOS module: they only use builtins, so they are evaluated and
# tested without nixpkgs (tests/eval.nix).
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

  # guest-agent's command line.
  guestArgs = { agent, manifestFile, source, credentialsDir ? null, metricsAddress, metricsPort, extraArgs ? [ ] }:
    [ agent "run" "--source" source "--manifest" manifestFile
      "--metrics-listen" (if metricsPort == null then "" else "${metricsAddress}:${toString metricsPort}") ]
    ++ (if credentialsDir == null then [ ] else [ "--credentials-dir" credentialsDir ])
    ++ extraArgs;

  # LoadCredential= lines: one per credential, NAME:PATH (systemd reads the path as root).
  loadCredentials = credentials:
    map (name: "${name}:${toString credentials.${name}}") (builtins.attrNames credentials);

  # host-launcher's command line for one VM.
  hostArgs = { launcher, name, vm, vmConfigFile ? null, manifestFile ? null }:
    [ launcher "run" "--vm" name "--hypervisor" vm.hypervisor "--all-credentials"
      "--ack-timeout" vm.ackTimeout "--on-failure" vm.onFailure "--runtime-dir" "/run/credlink/${name}" ]
    ++ builtins.concatLists (map (k: [ "--set" "${k}=${vm.settings.${k}}" ]) (builtins.attrNames vm.settings))
    ++ (if manifestFile == null then [ ] else [ "--manifest" manifestFile ])
    ++ (if vm.guestCid == null then [ ] else [ "--guest-cid" (toString vm.guestCid) ])
    ++ (if vm.hypervisor == "cloud-hypervisor" then [ "--vm-config" vmConfigFile ] else [ ])
    ++ vm.extraArgs
    ++ (if vm.hypervisor == "qemu" then [ "--" ] ++ vm.qemuArgs else [ ]);
}
