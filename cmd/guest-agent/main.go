// Command guest-agent runs inside a VM: it reads the credentials the VM received, checks them
// against a manifest, and acknowledges delivery to the host. See README.md.
package main

import (
	"fmt"
	"io"
	"os"
)

// Exit codes of the command-line contract.
const (
	exitOK     = 0
	exitFailed = 1 // verification failed
	exitUsage  = 2 // usage or manifest error
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "inspect":
		return inspect(args, stdout, stderr)
	case "version":
		return printVersion(stdout)
	default:
		fmt.Fprintf(stderr, "guest-agent: unknown command %q (commands: inspect, version)\n", cmd)
		return exitUsage
	}
}
