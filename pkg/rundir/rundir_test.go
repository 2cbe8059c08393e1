package rundir

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A run killed with SIGKILL leaves its directory — secrets included — behind; the next run in
// the same base removes it, and leaves live runs' and foreign directories alone.
func TestSweepRemovesLeftoverOfKilledRun(t *testing.T) {
	base := t.TempDir()
	// A child process creates a run directory with a "secret" in it and is killed.
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperCreateAndHang$")
	cmd.Env = append(os.Environ(), "RUNDIR_HELPER_BASE="+base)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, _ := out.Read(buf) // the helper prints its directory once it exists
	leftover := strings.TrimSpace(strings.SplitN(string(buf[:n]), "\n", 2)[0])
	if !strings.HasPrefix(leftover, filepath.Join(base, Prefix)) {
		t.Fatalf("helper said %q", buf[:n])
	}
	// While the helper lives, its directory is not swept.
	if removed, _ := Sweep(base); len(removed) != 0 {
		t.Fatalf("swept a live run: %v", removed)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if _, err := os.Stat(filepath.Join(leftover, "secret")); err != nil {
		t.Fatalf("the killed run's secret should still be there before the next run: %v", err)
	}

	foreign := filepath.Join(base, Prefix+"not-ours")
	os.Mkdir(foreign, 0o700)
	live, err := Create(base, "live")
	if err != nil {
		t.Fatal(err)
	}
	next, err := Create(base, "next") // sweeps first
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Errorf("leftover of the killed run survived the next run: %v", err)
	}
	for _, keep := range []string{foreign, live.Path, next.Path} {
		if _, err := os.Stat(keep); err != nil {
			t.Errorf("%s was removed: %v", keep, err)
		}
	}
	if fi, _ := os.Stat(next.Path); fi.Mode().Perm() != 0o700 {
		t.Errorf("mode %v", fi.Mode())
	}
	live.Remove()
	next.Remove()
	if _, err := os.Stat(live.Path); !os.IsNotExist(err) {
		t.Errorf("Remove left %s", live.Path)
	}
}

// TestHelperCreateAndHang is the killed run of TestSweepRemovesLeftoverOfKilledRun.
func TestHelperCreateAndHang(t *testing.T) {
	base := os.Getenv("RUNDIR_HELPER_BASE")
	if base == "" {
		t.Skip("helper process only")
	}
	d, err := Create(base, "victim")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(d.Path, "secret"), []byte("s3cr3t"), 0o600)
	os.Stdout.WriteString(d.Path + "\n")
	select {}
}

// The directory's name carries at most the first 32 bytes of the name, so that socket paths in
// it fit sun_path whatever the VM is called.
func TestCreateNameInPath(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"web", "credlink-web-"},
		{strings.Repeat("v", 64), "credlink-" + strings.Repeat("v", 32) + "-"},
		{"a/b\nc", "credlink-a_b_c-"},
	} {
		d, err := Create(t.TempDir(), tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if base := filepath.Base(d.Path); !strings.HasPrefix(base, tc.want) || strings.Contains(strings.TrimPrefix(base, tc.want), "-") {
			t.Errorf("Create(%q) made %q, want %q + a random suffix", tc.name, base, tc.want)
		}
		d.Remove()
	}
}
