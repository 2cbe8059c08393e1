package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// locate refuses a guard it cannot find and one it finds twice: either way the table is out of
// date and a mutant would test nothing, or the wrong thing.
func TestLocate(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "pkg", "x"), 0o755)
	os.WriteFile(filepath.Join(root, "pkg", "x", "x.go"), []byte("package x\n\nfunc f() {\n\tcheck()\n\tcheck()\n\tonce()\n}\n"), 0o644)
	os.WriteFile(filepath.Join(root, "pkg", "x", "x_test.go"), []byte("package x\n// once()\n"), 0o644)
	gs := []guard{{Name: "once", Old: "once()"}}
	if err := locate(root, gs); err != nil || gs[0].file != filepath.Join("pkg", "x", "x.go") || gs[0].line != 6 {
		t.Errorf("locate = %v, %+v", err, gs[0])
	}
	if err := locate(root, []guard{{Name: "twice", Old: "check()"}}); err == nil || !strings.Contains(err.Error(), `guard "twice" is ambiguous`) {
		t.Errorf("two matches: %v", err)
	}
	if err := locate(root, []guard{{Name: "gone", Old: "absent()"}}); err == nil || !strings.Contains(err.Error(), `guard "gone" moved or changed`) {
		t.Errorf("no match: %v", err)
	}
}

// Every guard of the real table is found exactly once in this tree.
func TestGuardsLocated(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	gs := append([]guard(nil), guards...)
	if err := locate(root, gs); err != nil {
		t.Error(err)
	}
}
