package metrics

import (
	"bytes"
	"flag"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/credlink/credlink/pkg/ack"
	"github.com/credlink/credlink/pkg/credential"
	"github.com/credlink/credlink/pkg/sources"
	"github.com/credlink/credlink/pkg/verify"
)

var update = flag.Bool("update", false, "rewrite golden files")

const secret = "sup3r-s3cret-v4lue"

func sample() verify.Result {
	v := credential.NewValue([]byte(secret))
	return verify.Result{
		OK: false, Expected: 2, Verified: 1, Time: time.Unix(1700000000, 500000000),
		Findings: []verify.Finding{
			{Name: "API_KEY", Status: credential.StatusOK, Bytes: len(secret), Source: "smbios", Required: true, Secret: true, Value: v},
			{Name: "DB_PASSWORD", Status: credential.StatusMissing, Required: true, Secret: true, Fails: true},
			{Name: "EXTRA", Status: credential.StatusUnexpected, Bytes: len(secret), Source: "credentials", Secret: true, Value: v},
		},
	}
}

func TestGoldenExposition(t *testing.T) {
	a := NewAgent()
	a.SetResult(sample())
	a.SetSystemd(252)
	a.SetSources([]sources.Report{{Name: "credentials", State: sources.OK}, {Name: "smbios", State: sources.Partial, Detail: "entry 11-1 …"}})
	a.ObserveAck(ack.ResultError, 2*time.Millisecond, time.Unix(1700000001, 0))
	a.ObserveAck(ack.ResultAccepted, 1500*time.Microsecond, time.Unix(1700000002, 0))
	reg := prometheus.NewRegistry()
	reg.MustRegister(a)

	got := scrape(t, reg)
	const golden = "testdata/agent.prom"
	if *update {
		os.WriteFile(golden, []byte(got), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if err := testutil.GatherAndCompare(reg, bytes.NewReader(want)); err != nil {
		t.Error(err)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
	if strings.Contains(got, secret) || strings.Contains(got, "sup3r") {
		t.Error("a secret reached the exposition")
	}
}

// scrape returns the text exposition, through the real HTTP handler with every collector.
func scrape(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	rr := httptest.NewRecorder()
	Handler(reg).ServeHTTP(rr, httptest.NewRequest("GET", "/metrics", nil))
	return rr.Body.String()
}

// promtool is Prometheus' own checker; CI installs it.
func TestPromtoolCheckMetrics(t *testing.T) {
	if _, err := exec.LookPath("promtool"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool missing; .ci/run installs it")
		}
		t.Skip("promtool not installed (apt-get install prometheus)")
	}
	a := NewAgent()
	a.SetResult(sample())
	a.ObserveAck(ack.ResultAccepted, time.Millisecond, time.Now())
	out := scrape(t, Registry(a))
	cmd := exec.Command("promtool", "check", "metrics")
	cmd.Stdin = strings.NewReader(out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, b)
	}
	for _, want := range []string{"go_goroutines", "process_resident_memory_bytes", "go_build_info", `credlink_credential_state{name="DB_PASSWORD",status="missing"} 1`} {
		if !strings.Contains(out, want) {
			t.Errorf("exposition lacks %s", want)
		}
	}
	if strings.Contains(out, secret) {
		t.Error("a secret reached the exposition")
	}
}
