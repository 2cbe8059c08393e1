// Package cmdhelp gives credlink's programs the help conventions operators know from systemd's
// tools, ch-remote and qemu-img: `-h`, `--help` and `help [COMMAND]` print an overview (what the
// program is for, its commands with one line each, the invocations people actually run) to
// stdout with exit 0; an unknown command prints the same overview to stderr with exit 2;
// `COMMAND --help` lists that command's flags grouped by purpose, with defaults.
//
// Each program describes itself once, as a [Program]; flags are registered by the same function
// that parses them ([Command.Flags]), so the help cannot list a flag the parser does not know.
// [Markdown] renders a command's flags as the README's reference table, and the programs' tests
// require README.md to contain exactly that table, so the two cannot drift.
package cmdhelp
