# Prints (through builtins.trace, which writes strings raw) a bash fragment describing the three
# microvm.nix VM shapes of eval.nix: the wrapper's host-launcher argv and microvm.nix's generated
# cloud-hypervisor arguments exactly as microvm-run's `exec` line holds them (shell syntax,
# parsed by bash as microvm-run would), plus each manifest. run.sh sources it.
{ tp, libDir ? tp + "/lib/lib", microvmDir ? tp + "/microvm" }:
let
  r = import ./eval.nix { inherit libDir microvmDir; };
  lib = import ./stand-in/lib28.nix libDir;
  frag = name: s: ''
    shape_${name}_args=( ${lib.escapeShellArgs s.args} )
    shape_${name}_cmd=( ${s.command} )
    shape_${name}_manifest=${lib.escapeShellArg s.manifest}
  '';
  text = "#CREDLINK-SHAPES-BEGIN\nshapes=( ${toString (builtins.attrNames r.shapes)} )\n"
    + lib.concatStrings (lib.mapAttrsToList frag r.shapes) + "#CREDLINK-SHAPES-END\n";
in
builtins.trace (builtins.unsafeDiscardStringContext text) (builtins.length r.failed)
