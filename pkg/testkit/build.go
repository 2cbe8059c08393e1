package testkit

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Module is credlink's module path; Bin's names are commands under Module/cmd.
const Module = "github.com/credlink/credlink"

var builds struct {
	mu   sync.Mutex
	dir  string
	bins map[string]string // command name → path
	errs map[string]error  // a failed build fails every later request at once
}

// Bin returns the path of the module's command name ("guest-agent", "host-launcher"), built on
// first use in this test process and shared by every test in it. Several names build in one go
// invocation. The build uses -race exactly when the test binary does, so the packages the test
// compile already put in the build cache are reused instead of compiled a second time; GOFLAGS
// and the rest of the environment pass through unchanged (the mutation check relies on that).
// A failed build fails t.
func Bin(t testing.TB, names ...string) string {
	t.Helper()
	paths, err := build(names)
	if err != nil {
		t.Fatal(err)
	}
	return paths[0]
}

// MustBin is Bin for a TestMain, which has no testing.TB: it panics on failure.
func MustBin(names ...string) string {
	paths, err := build(names)
	if err != nil {
		panic(err)
	}
	return paths[0]
}

func build(names []string) ([]string, error) {
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if builds.bins == nil {
		builds.bins, builds.errs = map[string]string{}, map[string]error{}
	}
	var todo []string
	for _, n := range names {
		if err := builds.errs[n]; err != nil {
			return nil, err
		}
		if builds.bins[n] == "" {
			todo = append(todo, n)
		}
	}
	if len(todo) > 0 {
		if Race {
			quickRaceExit()
		}
		if builds.dir == "" {
			d, err := os.MkdirTemp("", "credlink-testbin-")
			if err != nil {
				return nil, err
			}
			builds.dir = d
		}
		args := []string{"build", "-o", builds.dir + "/"}
		if Race {
			args = append(args, "-race")
		}
		for _, n := range todo {
			args = append(args, Module+"/cmd/"+n)
		}
		cmd := exec.Command(goTool(), args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			err = fmt.Errorf("go %v: %v\n%s", args, err, out.String())
			for _, n := range todo {
				builds.errs[n] = err
			}
			return nil, err
		}
		for _, n := range todo {
			builds.bins[n] = filepath.Join(builds.dir, n)
		}
	}
	paths := make([]string, len(names))
	for i, n := range names {
		paths[i] = builds.bins[n]
	}
	return paths, nil
}

// quickRaceExit sets atexit_sleep_ms=0 in $GORACE for the children this process starts from now
// on (the test binary's own race runtime has read it already): by default a -race binary sleeps
// a second before exiting, to let other goroutines report, which would add a second to every
// daemon a test stops. A race found in a child still makes it print the report and exit 66.
func quickRaceExit() {
	g := os.Getenv("GORACE")
	if !strings.Contains(g, "atexit_sleep_ms") {
		os.Setenv("GORACE", strings.TrimSpace(g+" atexit_sleep_ms=0"))
	}
}

// goTool is "go": go test puts its own toolchain's bin directory first in the test's $PATH
// (since Go 1.19), so this is the toolchain that built the test binary.
func goTool() string { return "go" }

// Main runs the tests and removes what Bin built; call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	Cleanup()
	os.Exit(code)
}

// Cleanup removes what Bin built; for a TestMain that does more than Main.
func Cleanup() {
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
	}
	builds.dir, builds.bins, builds.errs = "", nil, nil
}
