package agent

// Run in process, through the seams it has (Notify, Logger, MetricsReady, the reload channel,
// BootIDPath, Sysfs), so that `go test -race` sees its goroutines: the metrics server, the
// acknowledgement, reloads and scrapes running at once.

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credlink/credlink/pkg/ack"
	"github.com/credlink/credlink/pkg/credential"
	"github.com/credlink/credlink/pkg/listen"
	"github.com/credlink/credlink/pkg/logging"
	"github.com/credlink/credlink/pkg/sdnotify"
	"github.com/credlink/credlink/pkg/testkit"
)

var secrets = map[string]string{
	"API_KEY":     "sk-agent-test-0123456789abcdefghijklmnopqrst", // 44 bytes
	"DB_PASSWORD": "db\x00binary\xffpass-agent-test",
}

var leaks = testkit.NewSecrets(secrets)

const manifestOK = `{"credentials": {
  "API_KEY": {"bytes": 44}, "DB_PASSWORD": {"min_bytes": 8},
  "ENVIRONMENT": {"secret": false}}, "unexpected": "warn"}`

// harness is one agent run: its options, notifications, logs and the channel that reloads it.
type harness struct {
	t        *testing.T
	o        Options
	notify   *sdnotify.Listener
	logs     *testkit.SyncBuffer
	reload   chan os.Signal
	metrics  chan net.Addr
	cancel   context.CancelFunc
	done     chan error
	manifest string
}

// newHarness prepares an agent reading an SMBIOS table with the secrets, ENVIRONMENT and extra.
func newHarness(t *testing.T, manifestSrc string, extra ...credential.Credential) *harness {
	t.Helper()
	creds := append(testkit.Values(secrets, "API_KEY", "DB_PASSWORD"),
		credential.Credential{Name: "ENVIRONMENT", Value: credential.NewValue([]byte("test"))})
	sys := testkit.SMBIOSSysfs(t, append(creds, extra...)...)
	dir, err := os.MkdirTemp("", "ag") // short: the notify socket path is bounded
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	n, err := sdnotify.Listen(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	h := &harness{t: t, notify: n, logs: &testkit.SyncBuffer{}, reload: make(chan os.Signal, 1),
		metrics: make(chan net.Addr, 1), done: make(chan error, 1), manifest: filepath.Join(dir, "manifest.json")}
	h.writeManifest(manifestSrc)
	bootID := filepath.Join(dir, "boot_id")
	os.WriteFile(bootID, []byte("boot-1\n"), 0o600)
	h.o = Options{ManifestPath: h.manifest, Source: credential.SourceSMBIOS, Sysfs: sys, MetricsListen: "127.0.0.1:0",
		BootIDPath: bootID, Version: "test", AckTimeout: 10 * time.Second,
		Logger: logging.New(h.logs, true, slog.LevelDebug), Notify: n.Send,
		MetricsReady: func(a net.Addr) { h.metrics <- a }}
	t.Cleanup(func() { leaks.CheckString(t, "logs", h.logs.String()) })
	return h
}

func (h *harness) writeManifest(src string) {
	if err := os.WriteFile(h.manifest, []byte(src), 0o600); err != nil {
		h.t.Fatal(err)
	}
}

// start runs the agent in the background; stop ends it.
func (h *harness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- Run(ctx, h.o, h.reload) }()
	h.t.Cleanup(func() {
		cancel()
		select {
		case <-h.done:
		case <-time.After(10 * time.Second):
			h.t.Error("Run did not return within 10 s of its context ending")
		}
	})
}

// stop cancels Run's context and returns its error; STOPPING=1 must have been sent.
func (h *harness) stop() error {
	h.t.Helper()
	h.cancel()
	var err error
	select {
	case err = <-h.done:
		h.done <- err // for the cleanup
	case <-time.After(10 * time.Second):
		h.t.Fatal("Run did not return within 10 s of its context ending")
	}
	if _, e := h.notify.Wait(5*time.Second, sdnotify.Has("STOPPING", "1")); e != nil {
		h.t.Errorf("no STOPPING=1: %v", e)
	}
	return err
}

func (h *harness) wait(n int, match func(sdnotify.Message) bool, what string) sdnotify.Message {
	h.t.Helper()
	m, err := h.notify.WaitNth(10*time.Second, n, match)
	if err != nil {
		h.t.Fatalf("%s: %v\n%s\nlogs:\n%s", what, err, h.statuses(), h.logs.String())
	}
	return m
}

func (h *harness) statuses() string {
	var out []string
	for _, m := range h.notify.Messages() {
		out = append(out, strings.ReplaceAll(m.Raw, "\n", " | "))
	}
	return strings.Join(out, "\n")
}

func (h *harness) count(match func(sdnotify.Message) bool) int {
	n := 0
	for _, m := range h.notify.Messages() {
		if match(m) {
			n++
		}
	}
	return n
}

func scrape(t *testing.T, addr net.Addr) string {
	t.Helper()
	resp, err := http.Get("http://" + addr.String() + "/metrics")
	if err != nil {
		t.Error(err)
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	leaks.Check(t, "metrics", b)
	return string(b)
}

func TestRunReadyReloadStop(t *testing.T) {
	h := newHarness(t, manifestOK)
	h.start()
	var addr net.Addr
	select {
	case addr = <-h.metrics:
	case <-time.After(10 * time.Second):
		t.Fatal("metrics never served")
	}
	m := h.wait(1, sdnotify.Has("READY", "1"), "READY=1")
	if m.Fields["STATUS"] != "3/3 credentials verified" {
		t.Errorf("first notification %q", m.Raw)
	}
	if got := scrape(t, addr); !strings.Contains(got, "credlink_verification_success 1") || !strings.Contains(got, `credlink_credential_state{name="API_KEY",status="ok"} 1`) {
		t.Errorf("metrics:\n%s", got)
	}

	// Scrapes race with reloads: the race detector watches the shared result.
	var wg sync.WaitGroup
	stopScraping := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stopScraping:
				return
			default:
				scrape(t, addr)
			}
		}
	}()
	h.writeManifest(strings.Replace(manifestOK, `"bytes": 44`, `"bytes": 40`, 1))
	h.reload <- nil
	m = h.wait(1, sdnotify.HasPrefix("STATUS", "2/3 credentials verified; FAILED: API_KEY wrong_length (44 bytes, want 40)"), "failing reload")
	h.wait(2, sdnotify.Has("READY", "1"), "the reload's READY=1")
	if h.count(sdnotify.Has("RELOADING", "1")) != 1 {
		t.Errorf("a reload of a ready unit must send RELOADING=1 once:\n%s", h.statuses())
	}
	h.writeManifest(`{"credentials":`) // broken: the previous manifest stays
	h.reload <- nil
	h.wait(3, sdnotify.Has("READY", "1"), "second reload")
	if err := h.logs.WaitForText(5*time.Second, "reload: keeping the previous manifest"); err != nil {
		t.Error(err)
	}
	if n := h.count(sdnotify.HasPrefix("STATUS", "2/3 credentials verified; FAILED")); n != 2 {
		t.Errorf("the broken manifest's reload did not verify against the previous one:\n%s", h.statuses())
	}
	close(stopScraping)
	wg.Wait()
	if got := scrape(t, addr); !strings.Contains(got, "credlink_verifications_total 3") || !strings.Contains(got, `credlink_credential_state{name="API_KEY",status="wrong_length"} 1`) {
		t.Errorf("metrics after reloads:\n%s", got)
	}
	if err := h.stop(); err != nil {
		t.Errorf("Run: %v", err)
	}
	if last := h.notify.Messages(); last[len(last)-1].Fields["STOPPING"] != "1" {
		t.Errorf("STOPPING=1 is not the last notification:\n%s", h.statuses())
	}
	if _, err := net.Dial("tcp", addr.String()); err == nil {
		t.Error("metrics still served after Run returned")
	}
}

func TestRunNotReadyUntilFixed(t *testing.T) {
	h := newHarness(t, strings.Replace(manifestOK, `"bytes": 44`, `"bytes": 40`, 1))
	h.start()
	m := h.wait(1, sdnotify.HasPrefix("STATUS", ""), "first STATUS")
	if m.Fields["READY"] != "" || !strings.HasPrefix(m.Fields["STATUS"], "2/3 credentials verified; FAILED: API_KEY wrong_length") {
		t.Errorf("first notification %q", m.Raw)
	}
	// A reload that still fails: a unit that never became ready gets no reload protocol.
	h.reload <- nil
	h.wait(2, sdnotify.HasPrefix("STATUS", "2/3"), "the failing reload's STATUS")
	if n := h.count(func(m sdnotify.Message) bool { return m.Fields["READY"] == "1" || m.Fields["RELOADING"] == "1" }); n != 0 {
		t.Errorf("a failing reload of a unit that never became ready sent READY/RELOADING:\n%s", h.statuses())
	}
	h.writeManifest(manifestOK)
	h.reload <- nil
	if m := h.wait(1, sdnotify.Has("READY", "1"), "READY=1 after the fix"); m.Fields["STATUS"] != "3/3 credentials verified" || m.Fields["RELOADING"] != "" {
		t.Errorf("fixed: %q", m.Raw)
	}
	if err := h.stop(); err != nil {
		t.Errorf("Run: %v", err)
	}
}

func TestRunExitMode(t *testing.T) {
	h := newHarness(t, strings.Replace(manifestOK, `"bytes": 44`, `"bytes": 40`, 1))
	h.o.OnFailure, h.o.MetricsListen = "exit", ""
	err := Run(context.Background(), h.o, h.reload)
	if !errors.Is(err, ErrVerificationFailed) {
		t.Fatalf("Run = %v, want ErrVerificationFailed", err)
	}
	h.wait(1, sdnotify.Has("STOPPING", "1"), "STOPPING=1")
	if h.count(sdnotify.Has("READY", "1")) != 0 {
		t.Errorf("READY=1 in exit mode after a failure:\n%s", h.statuses())
	}
}

func TestRunUsageErrors(t *testing.T) {
	h := newHarness(t, manifestOK)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for name, change := range map[string]func(o *Options){
		"on-failure":       func(o *Options) { o.OnFailure = "maybe" },
		"missing manifest": func(o *Options) { o.ManifestPath += ".none" },
		"metrics address":  func(o *Options) { o.MetricsListen = busy.Addr().String() },
	} {
		o := h.o
		change(&o)
		if err := Run(context.Background(), o, nil); !errors.Is(err, ErrUsage) {
			t.Errorf("%s: Run = %v, want ErrUsage", name, err)
		}
	}
	if len(h.notify.Messages()) != 0 {
		t.Errorf("notifications before the configuration was valid:\n%s", h.statuses())
	}
}

// TestRunAcknowledges: with credlink.ack, credlink.key and credlink.vm delivered, the agent
// acknowledges to a real ack.Server, which checks every credential's MAC; a rejection is logged
// and the next reload tries again.
func TestRunAcknowledges(t *testing.T) {
	for _, tt := range []struct {
		name     string
		hostSent string // the host's idea of DB_PASSWORD
		accepted bool
	}{{"accepted", secrets["DB_PASSWORD"], true}, {"rejected", "another-db-password", false}} {
		t.Run(tt.name, func(t *testing.T) {
			key := make([]byte, ack.KeySize)
			rand.Read(key)
			leaks.Add("credlink.key", key)
			sock := filepath.Join(t.TempDir(), "ack.sock")
			l, err := listen.Unix(sock)
			if err != nil {
				t.Fatal(err)
			}
			results := make(chan ack.Result, 8)
			srv := &ack.Server{Key: key, VM: "web1", OnResult: func(r ack.Result) { results <- r },
				Sent: append(testkit.Values(map[string]string{"API_KEY": secrets["API_KEY"], "DB_PASSWORD": tt.hostSent}, "API_KEY", "DB_PASSWORD"),
					credential.Credential{Name: "ENVIRONMENT", Value: credential.NewValue([]byte("test"))})}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go srv.Serve(ctx, l)

			h := newHarness(t, manifestOK,
				credential.Credential{Name: credential.AckCredential, Value: credential.NewValue([]byte("unix:" + sock))},
				credential.Credential{Name: credential.KeyCredential, Value: credential.NewValue(key)},
				credential.Credential{Name: credential.VMCredential, Value: credential.NewValue([]byte("web1\n"))})
			h.start()
			addr := <-h.metrics
			var r ack.Result
			select {
			case r = <-results:
			case <-time.After(10 * time.Second):
				t.Fatalf("no report reached the host\n%s", h.logs.String())
			}
			if !r.Authenticated || r.Accepted != tt.accepted || r.Report.VM != "web1" || r.Report.BootID != "boot-1" || r.Report.Agent != "test" {
				t.Fatalf("host result %+v report %+v", r, r.Report)
			}
			var names []string
			for _, c := range r.Report.Credentials {
				names = append(names, c.Name)
				if len(c.MAC) == 0 || c.Bytes == 0 {
					t.Errorf("%s reported without a MAC or length: %+v", c.Name, c)
				}
			}
			if strings.Join(names, ",") != "API_KEY,DB_PASSWORD,ENVIRONMENT" {
				t.Errorf("reported credentials %v (control credentials must not be reported)", names)
			}
			want := "host accepted the acknowledgement"
			if !tt.accepted {
				want = `msg="host rejected the acknowledgement" addr=unix:` + sock + ` reasons="DB_PASSWORD: guest received 25 bytes that differ from the 19 sent"`
			}
			if err := h.logs.WaitForText(10*time.Second, want); err != nil {
				t.Fatalf("%v\n%s", err, h.logs.String())
			}
			metrics := scrape(t, addr)
			wantMetric := `credlink_ack_attempts_total{result="accepted"} 1`
			if !tt.accepted {
				wantMetric = `credlink_ack_attempts_total{result="rejected"} 1`
			}
			if !strings.Contains(metrics, wantMetric) || strings.Contains(metrics, "credlink.key") {
				t.Errorf("ack metrics:\n%s", metrics)
			}
			// A reload acknowledges again only while the host has not accepted.
			h.reload <- nil
			h.wait(2, sdnotify.HasPrefix("STATUS", "3/3"), "the reload's STATUS")
			if !tt.accepted {
				select {
				case r := <-results:
					if !r.Authenticated || r.Accepted {
						t.Errorf("second report: %+v", r)
					}
				case <-time.After(10 * time.Second):
					t.Error("a reload after a rejection did not acknowledge again")
				}
			}
			if err := h.stop(); err != nil {
				t.Errorf("Run: %v", err)
			}
			if tt.accepted && len(results) != 0 {
				t.Errorf("acknowledged again after an acceptance: %+v", <-results)
			}
		})
	}
}
