package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/credlink/credlink/pkg/credential"
	"github.com/credlink/credlink/pkg/launch"
	"github.com/credlink/credlink/pkg/logging"
	"github.com/credlink/credlink/pkg/rundir"
	"github.com/credlink/credlink/pkg/sdnotify"
)

// demo runs the whole flow on this machine in local mode: generated credentials shaped like a
// real deployment, a manifest, host-launcher's lifecycle with the real guest-agent binary as the
// "guest", and a summary. It needs no root and no VM.
// demoFlags registers demo's flags; the help and the parser both use it.
func demoFlags(fs *flag.FlagSet, agent *string, verbose *bool) {
	fs.StringVar(agent, "agent", "", "guest-agent binary `PATH` (default: next to host-launcher, then $PATH)")
	fs.BoolVar(verbose, "v", false, "show the launcher's and the agent's logs")
}

func demo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	var agent string
	var verbose bool
	demoFlags(fs, &agent, &verbose)
	cmd, _ := program.Command("demo")
	if code, ok := program.Parse(cmd, fs, args, stdout, stderr); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "host-launcher demo: unexpected argument %q\n", fs.Arg(0))
		return launch.ExitConfig
	}
	// SIGTERM and SIGINT end the demo through its deferred clean-up (the generated credentials
	// included); a SIGKILL leaves the directory to the next run's sweep (pkg/rundir).
	sigctx, stopSignals := signal.NotifyContext(context.Background(), stopSignals...)
	defer stopSignals()
	rd, err := rundir.Create("", "demo")
	if err != nil {
		fmt.Fprintln(stderr, "host-launcher demo:", err)
		return 1
	}
	defer rd.Remove()
	work := rd.Path

	// What systemd's LoadCredential= would have put in $CREDENTIALS_DIRECTORY.
	credDir := filepath.Join(work, "credentials")
	secrets := map[string]int{"API_KEY": 33, "DB_PASSWORD": 48, "JWT_SECRET": 66} // raw bytes → 44, 64, 88 base64 chars
	names := []string{"API_KEY", "DB_PASSWORD", "JWT_SECRET"}
	if err := os.Mkdir(credDir, 0o700); err != nil {
		fmt.Fprintln(stderr, "host-launcher demo:", err)
		return 1
	}
	for _, n := range names {
		raw := make([]byte, secrets[n])
		_, _ = rand.Read(raw)
		if err := os.WriteFile(filepath.Join(credDir, n), []byte(base64.StdEncoding.EncodeToString(raw)), 0o400); err != nil {
			fmt.Fprintln(stderr, "host-launcher demo:", err)
			return 1
		}
	}
	env := "demo"
	sum := sha256.Sum256([]byte(env))
	manifestPath := filepath.Join(work, "manifest.json")
	manifest := fmt.Sprintf(`{"credentials": {
  "API_KEY": {"bytes": 44}, "DB_PASSWORD": {"bytes": 64},
  "JWT_SECRET": {"min_bytes": 64, "max_bytes": 128},
  "ENVIRONMENT": {"secret": false, "sha256": %q},
  "CLUSTER": {"secret": false}},
 "unexpected": "fail"}
`, hex.EncodeToString(sum[:]))
	if err := os.WriteFile(manifestPath, []byte(manifest), 0o600); err != nil {
		fmt.Fprintln(stderr, "host-launcher demo:", err)
		return 1
	}
	metricsAddr, err := freePort()
	if err != nil {
		fmt.Fprintln(stderr, "host-launcher demo:", err)
		return 1
	}

	// The service manager: a real notify socket, as systemd would give a Type=notify unit.
	notify, err := sdnotify.Listen(work)
	if err != nil {
		fmt.Fprintln(stderr, "host-launcher demo:", err)
		return 1
	}
	defer notify.Close()

	// The launcher's logger and the goroutines copying the agent's output write at once.
	var logs lockedBuffer
	var logw io.Writer = &logs
	if verbose {
		logw = stderr
	}
	c := &launch.Config{
		VM: "demo", Hypervisor: &launch.Local{Agent: agent, Metrics: metricsAddr}, CredentialsDir: credDir, ManifestPath: manifestPath,
		AckTimeout: 20 * time.Second, ShutdownTimeout: 5 * time.Second, RuntimeDir: work,
		Logger: logging.New(logw, false, slog.LevelInfo), Stdout: logw, Stderr: logw,
	}
	for _, n := range names {
		c.Credentials = append(c.Credentials, launch.CredentialSpec{Name: n, ID: n})
	}
	c.Settings = []credential.Credential{
		{Name: "ENVIRONMENT", Value: credential.NewValue([]byte(env))},
		{Name: "CLUSTER", Value: credential.NewValue([]byte("local-1"))},
	}
	c.Notify = notify.Send

	ctx, cancel := context.WithCancel(sigctx)
	defer cancel()
	var once sync.Once
	var scraped string
	var scrapeErr error
	out, err := c.Run(ctx, func(launch.Outcome) {
		once.Do(func() {
			// The agent records the host's verdict a moment after the launcher sends READY=1.
			scraped, scrapeErr = scrape("http://"+metricsAddr+"/metrics", "credlink_ack_accepted 1")
			cancel() // the demo ends once READY=1 is out and the metrics are read
		})
	})
	if sigctx.Err() != nil && !out.Ready {
		fmt.Fprintln(stderr, "host-launcher demo: interrupted; the generated credentials and the private directory are removed")
		return 1
	}
	if err != nil || !out.Ready {
		fmt.Fprintf(stderr, "host-launcher demo: failed: %v %s\n--- logs ---\n%s", err, strings.Join(out.Reasons, "; "), logs.String())
		if err == nil {
			return 1
		}
		return launch.ExitCode(err)
	}
	ready, rerr := notify.Wait(time.Second, sdnotify.Has("READY", "1"))

	fmt.Fprintln(stdout, "credlink demo: host-launcher + guest-agent on this machine (local mode, no VM)")
	fmt.Fprintln(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  CREDENTIAL\tBYTES\tKIND\tGUEST STATUS\tSOURCE\tHOST CHECK")
	for _, cr := range out.Accepted.Report.Credentials {
		kind := "secret (LoadCredential)"
		if cr.Name == "ENVIRONMENT" || cr.Name == "CLUSTER" {
			kind = "config (--set)"
		}
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%s\tMAC matches\n", cr.Name, cr.Bytes, kind, cr.Status, cr.Source)
	}
	tw.Flush()
	fmt.Fprintln(stdout)
	fmt.Fprintf(stdout, "  %d/%d credentials delivered byte-exact (HMAC-SHA256 per credential, checked by the host; no value on the wire)\n",
		len(out.Accepted.Report.Credentials), len(c.Credentials)+len(c.Settings))
	fmt.Fprintf(stdout, "  acknowledgement: %s, exchange %s (hello to report, host side); READY=1 sent %s after the report\n",
		out.Transport, round(out.Accepted.Received.Sub(out.Accepted.Started)), round(out.AckToReady))
	fmt.Fprintf(stdout, "  time to ready:   %s from launch to READY=1\n", round(out.ReadyAt.Sub(out.Started)))
	if rerr == nil {
		fmt.Fprintf(stdout, "  service manager: received READY=1 with %q\n", "STATUS="+ready.Fields["STATUS"])
	}
	if scrapeErr != nil {
		fmt.Fprintf(stdout, "  metrics:         could not scrape http://%s/metrics: %v\n", metricsAddr, scrapeErr)
	} else {
		fmt.Fprintf(stdout, "  metrics:         served by guest-agent at http://%s/metrics (stopped now):\n", metricsAddr)
		for _, l := range strings.Split(scraped, "\n") {
			if strings.HasPrefix(l, "credlink_verification_success") || strings.HasPrefix(l, "credlink_credentials_") ||
				strings.HasPrefix(l, "credlink_ack_accepted") || strings.HasPrefix(l, `credlink_ack_attempts_total{result="accepted"}`) {
				fmt.Fprintln(stdout, "                   "+l)
			}
		}
	}
	fmt.Fprintln(stdout, "  secrets:         passed in OEM strings of a generated SMBIOS table in a private 0700 directory, now removed;")
	fmt.Fprintln(stdout, "                   never in argv, environment, logs or metrics")
	return 0
}

func round(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	default:
		return d.Round(10 * time.Millisecond).String()
	}
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// scrape fetches url until the body contains want (or 2 s pass).
func scrape(url, want string) (string, error) {
	var lastErr error
	for range 40 {
		resp, err := http.Get(url)
		if err == nil {
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && resp.StatusCode == 200 && strings.Contains(string(b), want) {
				return string(b), nil
			}
			err = fmt.Errorf("%s %v (no %q yet)", resp.Status, rerr, want)
		}
		lastErr = err
		time.Sleep(50 * time.Millisecond)
	}
	return "", lastErr
}

// lockedBuffer is a bytes.Buffer several goroutines may write.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
