// Command mutation checks that credlink's tests notice when a security guard is gone: for each
// guard listed in guards.go it disables the check in a scratch copy of the tree (one exact
// textual replacement, which must match exactly once), runs the tests of the packages that
// should catch it (with -failfast: one failing test is enough), and requires at least one test
// to fail. It prints a table guard → failing tests and exits 1 if any mutant survives, 2 if a guard cannot be found or a mutant does not
// compile (the table is out of date), 3 if the tests fail without any mutation.
//
//	test/mutation/run.sh [-only REGEXP] [-race=false] [-keep]   (or: make mutation)
//
// The scratch copy shares the Go build cache: the standard library and third-party packages
// come from the cache make test filled (with -race, as make test builds), and only credlink's
// packages are compiled for the copy, each once unless a mutant changes it.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

type guard struct {
	Name, Why string
	Old, New  string
	Packages  []string // tests to run (./pkg/x), besides the guard's own package
	Run       string   // go test -run filter; empty runs every test
	NeedsRoot bool     // its tests skip without root: not run then

	file string // where Old was found, relative to the tree
	line int
}

type outcome struct {
	killedBy []string // failing tests, "pkg.TestName"
	err      error    // the mutant could not be evaluated
	skipped  string
	took     time.Duration
}

func main() {
	only := flag.String("only", "", "run only guards whose name matches this regular expression")
	race := flag.Bool("race", true, "run the tests with -race (as make test does, to share its build cache)")
	keep := flag.Bool("keep", false, "keep the scratch copy")
	flag.Parse()
	os.Exit(run(*only, *race, *keep))
}

func run(only string, race, keep bool) int {
	start := time.Now()
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mutation:", err)
		return 2
	}
	sel := guards
	if only != "" {
		re, err := regexp.Compile(only)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mutation: -only:", err)
			return 2
		}
		sel = nil
		for _, g := range guards {
			if re.MatchString(g.Name) {
				sel = append(sel, g)
			}
		}
	}
	if err := locate(root, sel); err != nil {
		fmt.Fprintln(os.Stderr, "mutation:", err)
		return 2
	}
	scratch, err := os.MkdirTemp("", "credlink-mutation-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "mutation:", err)
		return 2
	}
	if keep {
		fmt.Fprintln(os.Stderr, "mutation: keeping", scratch)
	} else {
		defer os.RemoveAll(scratch)
	}
	tree := filepath.Join(scratch, "tree")
	if err := copyTree(root, tree); err != nil {
		fmt.Fprintln(os.Stderr, "mutation: copy:", err)
		return 2
	}
	isRoot := os.Geteuid() == 0

	// The unmutated tests must pass, or every mutant would look caught.
	var all []string
	for _, g := range sel {
		if g.NeedsRoot && !isRoot {
			continue
		}
		for _, p := range g.packages() {
			if !slices.Contains(all, p) {
				all = append(all, p)
			}
		}
	}
	fmt.Fprintf(os.Stderr, "mutation: %d guards; baseline: go test %s\n", len(sel), strings.Join(all, " "))
	base := goTest(tree, all, "", race, filepath.Join(scratch, "baseline.log"))
	if base.err == nil && len(base.killedBy) > 0 {
		// Once more before giving up: a test that fails only sometimes is worth a warning here,
		// but it must not stop the check (its failures under a mutant would still count).
		fmt.Fprintf(os.Stderr, "mutation: WARNING: without any mutation %s failed; running the baseline again\n", strings.Join(base.killedBy, ", "))
		base = goTest(tree, all, "", race, filepath.Join(scratch, "baseline-2.log"))
	}
	if base.err != nil || len(base.killedBy) > 0 {
		fmt.Fprintf(os.Stderr, "mutation: the tests fail without any mutation (%v %v); see %s\n", base.err, base.killedBy, filepath.Join(scratch, "baseline.log"))
		keepOnFailure(scratch, keep)
		return 3
	}
	fmt.Fprintf(os.Stderr, "mutation: baseline passed in %v\n", base.took.Round(100*time.Millisecond))

	results := make([]outcome, len(sel))
	for i, g := range sel {
		if g.NeedsRoot && !isRoot {
			results[i].skipped = "not run: its test needs root"
			continue
		}
		results[i] = mutate(tree, g, race, filepath.Join(scratch, fmt.Sprintf("mutant-%02d.log", i)))
		fmt.Fprintf(os.Stderr, "mutation: %-42s %s:%d  %v\n", g.Name, g.file, g.line, results[i].took.Round(100*time.Millisecond))
	}

	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "GUARD\tWHERE\tRESULT\tFAILING TESTS")
	survived, broken := 0, 0
	for i, g := range sel {
		r := results[i]
		res, tests := "caught", strings.Join(abbreviate(r.killedBy, 4), ", ")
		switch {
		case r.skipped != "":
			res, tests = "skipped", r.skipped
		case r.err != nil:
			res, tests = "ERROR", r.err.Error()
			broken++
		case len(r.killedBy) == 0:
			res, tests = "SURVIVED", "no test failed: "+g.Why
			survived++
		}
		fmt.Fprintf(w, "%s\t%s:%d\t%s\t%s\n", g.Name, g.file, g.line, res, tests)
	}
	w.Flush()
	fmt.Printf("%d guards, %d caught, %d survived, %d errors, in %v\n", len(sel), len(sel)-survived-broken-countSkipped(results), survived, broken, time.Since(start).Round(time.Second))
	switch {
	case broken > 0:
		keepOnFailure(scratch, keep)
		return 2
	case survived > 0:
		return 1
	}
	return 0
}

func (g guard) packages() []string {
	own := "./" + filepath.ToSlash(filepath.Dir(g.file))
	if slices.Contains(g.Packages, own) || g.Run != "" {
		return g.Packages
	}
	return append([]string{own}, g.Packages...)
}

func countSkipped(rs []outcome) int {
	n := 0
	for _, r := range rs {
		if r.skipped != "" {
			n++
		}
	}
	return n
}

func keepOnFailure(scratch string, keep bool) {
	if keep {
		return
	}
	logs := scratch + "-logs"
	os.MkdirAll(logs, 0o755)
	ms, _ := filepath.Glob(filepath.Join(scratch, "*.log"))
	for _, m := range ms {
		os.Rename(m, filepath.Join(logs, filepath.Base(m)))
	}
	fmt.Fprintln(os.Stderr, "mutation: logs kept in", logs)
}

func abbreviate(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(slices.Clone(s[:n]), fmt.Sprintf("(+%d)", len(s)-n))
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return "", fmt.Errorf("go list -m: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// skipDir reports directories that are not source: VCS data, caches, build outputs.
func skipDir(name string) bool {
	return strings.HasPrefix(name, ".") || name == "bin" || name == "result" || name == "node_modules"
}

// locate finds each guard's Old text in the tree's non-test Go files; it must occur exactly once.
func locate(root string, gs []guard) error {
	type src struct {
		rel  string
		data string
	}
	var files []src
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != root && (skipDir(d.Name()) || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") || strings.HasPrefix(p, filepath.Join(root, "test", "mutation")) {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		files = append(files, src{rel, string(b)})
		return nil
	})
	if err != nil {
		return err
	}
	var problems []string
	for i := range gs {
		g := &gs[i]
		var where []string
		for _, f := range files {
			if n := strings.Count(f.data, g.Old); n > 0 {
				where = append(where, fmt.Sprintf("%s (%d×)", f.rel, n))
				g.file = f.rel
				g.line = 1 + strings.Count(f.data[:strings.Index(f.data, g.Old)], "\n")
			}
		}
		switch {
		case len(where) == 0:
			problems = append(problems, fmt.Sprintf("guard %q moved or changed: %q is in no Go file; update test/mutation/guards.go", g.Name, g.Old))
		case len(where) > 1 || !strings.HasSuffix(where[0], "(1×)"):
			problems = append(problems, fmt.Sprintf("guard %q is ambiguous: %q occurs in %s; make it match exactly once", g.Name, g.Old, strings.Join(where, ", ")))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "\n"))
	}
	return nil
}

func copyTree(from, to string) error {
	return filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			if p != from && skipDir(d.Name()) {
				return filepath.SkipDir
			}
			return os.MkdirAll(dst, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil // sockets, symlinks to build results
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, info.Mode().Perm())
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}

// mutate applies g to the copy, runs its tests and restores the file.
func mutate(tree string, g guard, race bool, logPath string) outcome {
	p := filepath.Join(tree, g.file)
	orig, err := os.ReadFile(p)
	if err != nil {
		return outcome{err: err}
	}
	if err := os.WriteFile(p, bytes.Replace(orig, []byte(g.Old), []byte(g.New), 1), 0o644); err != nil {
		return outcome{err: err}
	}
	defer os.WriteFile(p, orig, 0o644)
	return goTest(tree, g.packages(), g.Run, race, logPath, "-failfast") // one failing test is enough
}

// testEvent is one line of go test -json (cmd/test2json).
type testEvent struct {
	Action      string
	Package     string
	Test        string
	Output      string
	FailedBuild string
}

// goTest runs the tests of pkgs in tree and returns the tests that failed. A package that does
// not build is an error (a mutant must compile to say anything); a package that fails with no
// failing test (a panic in TestMain, a timeout, a race found at exit) counts as its own name.
func goTest(tree string, pkgs []string, runFilter string, race bool, logPath string, flags ...string) outcome {
	start := time.Now()
	args := append([]string{"test", "-json", "-count=1", "-timeout=5m"}, flags...)
	if race {
		args = append(args, "-race")
	}
	if runFilter != "" {
		args = append(args, "-run", runFilter)
	}
	args = append(args, pkgs...)
	cmd := exec.Command("go", args...)
	cmd.Dir = tree
	logf, err := os.Create(logPath)
	if err != nil {
		return outcome{err: err}
	}
	defer logf.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return outcome{err: err}
	}
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		return outcome{err: err}
	}
	var o outcome
	failedPkgs := map[string]bool{}
	testsFailedIn := map[string]bool{}
	var buildFailed []string
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev testEvent
		if json.Unmarshal(sc.Bytes(), &ev) != nil {
			fmt.Fprintln(logf, sc.Text())
			continue
		}
		if ev.Output != "" {
			io.WriteString(logf, ev.Output)
		}
		if ev.Action != "fail" {
			continue
		}
		short := strings.TrimPrefix(ev.Package, "github.com/credlink/credlink/")
		switch {
		case ev.FailedBuild != "":
			buildFailed = append(buildFailed, short)
		case ev.Test != "" && !strings.Contains(ev.Test, "/"):
			o.killedBy = append(o.killedBy, short+"."+ev.Test)
			testsFailedIn[short] = true
		case ev.Test == "":
			failedPkgs[short] = true
		}
	}
	werr := cmd.Wait()
	for p := range failedPkgs {
		if !testsFailedIn[p] && !slices.Contains(buildFailed, p) {
			o.killedBy = append(o.killedBy, p+" (package failed without a failing test; see the log)")
		}
	}
	if len(buildFailed) > 0 {
		o.err = fmt.Errorf("does not compile in %s (see %s)", strings.Join(buildFailed, ", "), logPath)
	} else if werr != nil && len(o.killedBy) == 0 {
		o.err = fmt.Errorf("go test: %v (see %s)", werr, logPath)
	}
	o.took = time.Since(start)
	return o
}
