//go:build !race

package testkit

// Race reports whether this test binary was built with -race; Bin builds the commands
// the same way so that they share the test compile's build cache entries.
const Race = false
