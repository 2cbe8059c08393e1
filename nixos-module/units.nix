# The unit files in ../systemd are the one source of truth for what credlink's units contain:
# the NixOS module reads them (this file) instead of keeping a second copy of the hardening.
# Only builtins: tests evaluate it without nixpkgs.
#
# parse TEXT → { Unit = { Key = value | [values]; }; Service = …; Install = …; }
#   Comments (#, ;) and blank lines are skipped; a key given once is a string, a key repeated is
#   a list in file order (systemd appends, e.g. DeviceAllow=, SystemCallFilter=); an empty
#   assignment ("ExecStart=") stays as "" so a reset is visible. No line continuations (none of
#   our files use them; parse refuses them rather than misreading).
rec {
  trim = s:
    let m = builtins.match "[[:space:]]*(.*[^[:space:]])[[:space:]]*" s;
    in if m == null then "" else builtins.head m;

  parse = text:
    let
      lines = builtins.filter builtins.isString (builtins.split "\n" text);
      step = acc: raw:
        let line = trim raw;
        in
        if line == "" || builtins.substring 0 1 line == "#" || builtins.substring 0 1 line == ";" then acc
        else if builtins.match ".*\\\\" line != null then throw "credlink units.nix: line continuation in unit file: ${line}"
        else
          let section = builtins.match "[[]([A-Za-z]+)[]]" line;
          in if section != null then acc // { current = builtins.head section; }
          else
            let kv = builtins.match "([A-Za-z0-9-]+)=(.*)" line;
            in if kv == null then throw "credlink units.nix: cannot parse unit line: ${line}"
            else
              let
                key = builtins.elemAt kv 0;
                value = trim (builtins.elemAt kv 1);
                sec = acc.sections.${acc.current} or { };
              in
              acc // {
                sections = acc.sections // {
                  ${acc.current} = sec // { ${key} = (sec.${key} or [ ]) ++ [ value ]; };
                };
              };
      parsed = builtins.foldl' step { current = null; sections = { }; } lines;
    in
    builtins.mapAttrs (_: builtins.mapAttrs (_: vs: if builtins.length vs == 1 then builtins.head vs else vs)) parsed.sections;

  # Replaces systemd's instance specifier %i (and literal prefixes) in every value, for units the
  # module renders per VM rather than as templates.
  substitute = from: to: section: builtins.mapAttrs (_: v:
    if builtins.isList v then map (builtins.replaceStrings from to) v else builtins.replaceStrings from to v) section;

  read = file: parse (builtins.readFile file);

  # (`@` cannot appear in a Nix path literal, hence the string suffixes.)
  guestAgent = read ../systemd/guest-agent.service;
  vmStandalone = read (../systemd + "/credlink-vm@.service");
  microvmDropin = read (../systemd + "/microvm@.service.d/credlink.conf");
}
