package main

import (
	"flag"
	"testing"

	"github.com/credlink/credlink/pkg/cmdhelp/cmdhelptest"
)

var update = flag.Bool("update", false, "rewrite golden files and README.md's option tables")

// TestHelp: -h, --help, help [COMMAND], COMMAND --help, unknown commands and flags, against
// goldens and README.md's option tables.
func TestHelp(t *testing.T) {
	cmdhelptest.Check(t, program, run, "../../README.md", *update)
}
