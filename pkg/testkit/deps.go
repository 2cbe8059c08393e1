package testkit

import (
	"os/exec"
	"strings"
	"testing"
)

// Deps returns the import paths a package links (go list -deps: itself, everything it imports,
// transitively, the standard library included) for this machine's GOOS/GOARCH and no extra
// build tags, as the shipped binaries are built.
func Deps(t testing.TB, pkg string) []string {
	t.Helper()
	out, err := exec.Command(goTool(), "list", "-deps", pkg).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, stderr)
	}
	return strings.Fields(string(out))
}

// CheckDeps fails t for every package pkg links that starts with one of the keys of forbidden
// (an import path, or a prefix ending in "/"), naming the reason the value gives; and if pkg's
// dependencies do not include every path in must (a guard against a vacuous list, such as one
// from a renamed package).
func CheckDeps(t testing.TB, pkg string, forbidden map[string]string, must ...string) {
	t.Helper()
	deps := Deps(t, pkg)
	have := map[string]bool{}
	hits := map[string][]string{} // forbidden key → packages it matched
	for _, d := range deps {
		have[d] = true
		for f := range forbidden {
			if d == f || strings.HasSuffix(f, "/") && strings.HasPrefix(d, f) || strings.HasPrefix(d, f+"/") {
				hits[f] = append(hits[f], d)
			}
		}
	}
	for f, ds := range hits {
		t.Errorf("%s links %s (%d packages under %s): %s", pkg, ds[0], len(ds), f, forbidden[f])
	}
	for _, m := range must {
		if !have[m] {
			t.Errorf("%s does not link %s: the dependency list is not what this test expects", pkg, m)
		}
	}
}
