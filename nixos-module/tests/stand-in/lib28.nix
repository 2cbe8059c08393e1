# Loads the REAL nixpkgs lib (the snapshot in shared/third-party) on Debian 12's Nix 2.8, which
# lacks a few builtins that lib (written for Nix >= 2.18) names at load time: every import inside
# lib, and every module it imports, sees `builtins` with these polyfills. addDrvOutputDependencies
# only changes string context (identity here); readFileType is what lib did before Nix 2.14; the
# flake-reference and hash-conversion builtins throw if ever called (nothing here calls them).
libDir:
let
  polyfills = {
    addDrvOutputDependencies = s: s;
    readFileType = p: (builtins.readDir (dirOf p)).${baseNameOf p};
    convertHash = _: throw "builtins.convertHash is not available on Nix 2.8";
    flakeRefToString = _: throw "builtins.flakeRefToString is not available on Nix 2.8";
    parseFlakeRef = _: throw "builtins.parseFlakeRef is not available on Nix 2.8";
  };
  b = polyfills // builtins; # a Nix that has them keeps its own
  scope = {
    builtins = b;
    import = p: builtins.scopedImport scope p;
    scopedImport = s: p: builtins.scopedImport (scope // s) p;
    inherit (builtins) true false null map toString throw abort derivation derivationStrict baseNameOf dirOf isNull removeAttrs placeholder fetchTarball;
  };
in builtins.scopedImport scope (libDir + "/default.nix")
