package main

import (
	"testing"

	"github.com/credlink/credlink/pkg/cmdhelp/cmdhelptest"
)

// TestHelp: -h, --help, help [COMMAND], COMMAND --help, unknown commands and flags, against
// goldens and README.md's option table.
func TestHelp(t *testing.T) {
	cmdhelptest.Check(t, program, run, "../../README.md", *update)
}
