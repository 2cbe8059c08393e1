# Pure functions of the clan service: the guest manifest and the vars generator script from one
# VM declaration (declaration.nix). Builtins only.
rec {
  manifest = vm: {
    credentials =
      builtins.mapAttrs (_: c:
        if c.bytes != null then { inherit (c) bytes; }
        else (if c.minBytes != null then { min_bytes = c.minBytes; } else { })
          // (if c.maxBytes != null then { max_bytes = c.maxBytes; } else { })) vm.credentials
      // builtins.mapAttrs (_: v: { secret = false; sha256 = builtins.hashString "sha256" v; }) vm.settings;
    inherit (vm) unexpected;
  };

  # Shell for a clan vars generator ($out, $prompts as clan provides them): one file per
  # credential, exactly as long as declared, no trailing newline; a prompted value of the wrong
  # length fails the generation (naming the credential and the lengths, never the value).
  script = vm:
    let
      one = name: c:
        let
          min = if c.bytes != null then c.bytes else c.minBytes;
          max = if c.bytes != null then c.bytes else c.maxBytes;
          check = ''
            n=$(wc -c < "$out/${name}")
            ${if min != null then ''[ "$n" -ge ${toString min} ] || { echo "${name}: $n bytes, want at least ${toString min}" >&2; exit 1; }'' else ""}
            ${if max != null then ''[ "$n" -le ${toString max} ] || { echo "${name}: $n bytes, want at most ${toString max}" >&2; exit 1; }'' else ""}
          '';
        in
        if c.generate == "prompt" then ''
          # ${name}: prompted; a trailing newline from the prompt is not part of the secret
          printf '%s' "$(cat "$prompts/${name}")" > "$out/${name}"
          ${check}''
        else if c.bytes == null then throw "credlink clan: ${name}: generate = \"random\" needs bytes"
        else ''
          # ${name}: ${toString c.bytes} random alphanumeric bytes (tr ends on SIGPIPE when head has enough)
          { LC_ALL=C tr -dc 'A-Za-z0-9' < /dev/urandom || true; } | head -c ${toString c.bytes} > "$out/${name}"
          ${check}'';
    in
    "set -euo pipefail\numask 077\n" + builtins.concatStringsSep "\n" (map (n: one n vm.credentials.${n}) (builtins.attrNames vm.credentials));
}
