# Prints (through builtins.trace, which writes strings raw) a bash fragment describing the four
# microvm.nix VM shapes of eval.nix: microvm.nix's microvm-run script, the guest package's wrapper
# script (and the store path microvm-run execs it by), the host's launch script
# ($CREDLINK_LAUNCH), the hypervisor arguments of microvm-run's `exec` line (shell syntax), and
# each manifest. run.sh sources it.
{ tp, libDir ? tp + "/lib/lib", microvmDir ? tp + "/microvm" }:
let
  r = import ./eval.nix { inherit libDir microvmDir; };
  lib = import ./stand-in/lib28.nix libDir;
  frag = name: s: ''
    shape_${name}_launch=${lib.escapeShellArg s.launch}
    shape_${name}_wrapper=${lib.escapeShellArg s.wrapper}
    shape_${name}_wrapper_path=${lib.escapeShellArg s.wrapperPath}
    shape_${name}_run=${lib.escapeShellArg s.run}
    shape_${name}_cmd=( ${s.command} )
    shape_${name}_manifest=${lib.escapeShellArg s.manifest}
  '';
  text = "#CREDLINK-SHAPES-BEGIN\nshapes=( ${toString (builtins.attrNames r.shapes)} )\n"
    + lib.concatStrings (lib.mapAttrsToList frag r.shapes) + "#CREDLINK-SHAPES-END\n";
in
builtins.trace (builtins.unsafeDiscardStringContext text) (builtins.length r.failed)
