package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/credlink/credlink/pkg/credential"
	"github.com/credlink/credlink/pkg/listen"
	"github.com/credlink/credlink/pkg/manifest"
	"github.com/credlink/credlink/pkg/metrics"
	"github.com/credlink/credlink/pkg/sdnotify"
	"github.com/credlink/credlink/pkg/sources"
	"github.com/credlink/credlink/pkg/verify"
)

// DefaultMetricsListen is guest-agent's documented metrics address (port 9863 is not in
// Prometheus' default port allocations list at the time of writing).
const DefaultMetricsListen = ":9863"

// Options configures the agent.
type Options struct {
	ManifestPath   string
	Source         string // auto, smbios, credentials, fwcfg
	Sysfs          string // default /sys
	CredentialsDir string // default $CREDENTIALS_DIRECTORY
	MetricsListen  string // empty disables
	OnFailure      string // "wait" (default) or "exit"
	AckTimeout     time.Duration
	BootIDPath     string // default /proc/sys/kernel/random/boot_id
	Version        string
	// Systemd is the guest's systemd version, whose import rules the agent applies to the
	// firmware (0: unknown, newest rules); SystemdFrom says how it was learnt, for reports.
	Systemd     credential.Systemd
	SystemdFrom string
	// PassedFiles are files the service manager opened for the agent, by name (systemd's
	// OpenFile=PATH:NAME, passed as $LISTEN_FDS/$LISTEN_FDNAMES). A virtio-serial port named
	// like the one in credlink.ack is used instead of opening /dev/virtio-ports/NAME.
	PassedFiles map[string]*os.File

	Logger *slog.Logger
	// Notify sends an sd_notify state; nil means do not notify.
	Notify func(state string) error
	// MetricsReady, if set, receives the bound metrics address once serving.
	MetricsReady func(addr net.Addr)
}

// Check loads the manifest, reads the credentials and verifies them once.
func (o *Options) Check() (verify.Result, Received, error) {
	m, err := manifest.Load(o.ManifestPath)
	if err != nil {
		return verify.Result{}, Received{}, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	rec, err := o.Read()
	if err != nil {
		return verify.Result{}, Received{}, err
	}
	return verify.Verify(m, verify.Input{Set: rec.Set, Compare: rec.Compare}, time.Now()), rec, nil
}

// ErrVerificationFailed is returned by Run in "exit" mode when verification failed.
var ErrVerificationFailed = errors.New("credential verification failed")

// metricsLimits bound what anyone who can reach the metrics port can hold in the agent (each
// connection a goroutine, buffers and a descriptor): a Prometheus scrape is one short request
// at a time.
var metricsLimits = listen.HTTPLimits{Conns: 8, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
	WriteTimeout: 10 * time.Second, IdleTimeout: 5 * time.Second}

// Run is the daemon: verify, notify, serve metrics, acknowledge, and re-verify on every value
// received from reload, until ctx ends.
func Run(ctx context.Context, o Options, reload <-chan os.Signal) error {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	notify := o.Notify
	if notify == nil {
		notify = func(string) error { return nil }
	}
	switch o.OnFailure {
	case "", "wait", "exit":
	default:
		return fmt.Errorf("%w: --on-failure must be wait or exit, not %q", ErrUsage, o.OnFailure)
	}
	m, err := manifest.Load(o.ManifestPath)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	st := metrics.NewAgent()
	d := &daemon{o: o, log: log, notify: notify, st: st}
	st.SetSystemd(int(o.Systemd))

	// The host's READY=1 waits for the acknowledgement, so it goes first: read and verify, start
	// the exchange, and only then bind and serve the metrics, log the findings and tell systemd
	// (binding and the registry with the Go and process collectors cost more instructions than
	// everything else the acknowledgement needs; make bench, "instr"). A metrics address that
	// cannot be bound is still a usage error (exit 2) before READY=1, though the host may have
	// received the acknowledgement by then: the delivery it attests did happen.
	res := d.check(m)
	acked, firstTry := d.startAck(ctx)
	// With one CPU (GOMAXPROCS=1, as the unit runs it) the work below would hold the thread
	// while the host's challenge waits, so the exchange's second half would queue behind it:
	// let the first exchange finish, within a bound that keeps an unreachable host from
	// holding up the guest's own READY=1.
	select {
	case <-firstTry:
	case <-time.After(firstTryWait):
	}
	l, err := d.listenMetrics()
	if err != nil {
		return err
	}
	if srv := d.serveMetrics(l); srv != nil {
		defer srv.Close()
	}
	log.Info("applying systemd's import rules", "rules", o.Systemd.String(), "from", o.SystemdFrom)
	ready := d.announce(res)
	if !ready && o.OnFailure == "exit" {
		d.waitAck(ctx, acked)
		_ = notify("STOPPING=1")
		return ErrVerificationFailed
	}

	for {
		select {
		case <-ctx.Done():
			_ = notify("STOPPING=1")
			log.Info("stopping")
			d.waitAckBriefly(acked)
			return nil
		case <-reload:
			// A unit that is already up reloads (RELOADING=1 … READY=1 ends the reload; a
			// failure then shows in STATUS= and the metrics, since readiness cannot be taken
			// back). One that never became ready is still starting: no reload protocol, and
			// READY=1 only if this verification passes.
			wasReady := d.isReady()
			if wasReady {
				_ = notify(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", monotonicUsec()))
			}
			nm, err := manifest.Load(o.ManifestPath)
			if err != nil {
				log.Error("reload: keeping the previous manifest", "err", err)
			} else {
				m = nm
			}
			d.verify(m)
			if wasReady {
				_ = notify("READY=1")
			}
			// A new attempt only when the last one has ended: a second one would share the
			// virtio-serial port (the OpenFile= descriptor) with the first, each reading the
			// other's challenge or verdict.
			select {
			case <-acked:
				if !d.ackAccepted() {
					acked, _ = d.startAck(ctx)
				}
			default:
			}
		}
	}
}

// firstTryWait bounds how long start-up waits for the first acknowledgement exchange before
// serving metrics and announcing the verification (READY=1).
const firstTryWait = 500 * time.Millisecond

type daemon struct {
	o      Options
	log    *slog.Logger
	notify func(string) error
	st     *metrics.Agent

	mu        sync.Mutex
	result    verify.Result
	received  Received
	readySent bool
	accepted  bool
}

// listenMetrics binds the metrics address unless disabled (nil listener); failing to is a usage
// error.
func (d *daemon) listenMetrics() (net.Listener, error) {
	if d.o.MetricsListen == "" {
		return nil, nil
	}
	l, err := net.Listen("tcp", d.o.MetricsListen)
	if err != nil {
		return nil, fmt.Errorf("%w: metrics listener: %w", ErrUsage, err)
	}
	return l, nil
}

// serveMetrics builds the registry and serves it on l (nil: metrics disabled, returns nil).
func (d *daemon) serveMetrics(l net.Listener) *http.Server {
	if l == nil {
		return nil
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", metrics.Handler(metrics.Registry(d.st)))
	srv := listen.ServeHTTP(l, mux, metricsLimits)
	d.log.Info("serving metrics", "addr", l.Addr().String())
	if d.o.MetricsReady != nil {
		d.o.MetricsReady(l.Addr())
	}
	return srv
}

// verify runs one verification and reports it everywhere; it returns whether it passed.
func (d *daemon) verify(m *manifest.Manifest) bool {
	return d.announce(d.check(m))
}

// check reads the credentials and verifies them; the result is what the next acknowledgement
// reports.
func (d *daemon) check(m *manifest.Manifest) verify.Result {
	rec, err := d.o.Read()
	if err != nil {
		d.log.Error("cannot read credentials", "err", err)
		// Every listed credential is missing: report that rather than nothing, and keep the
		// source reports, which say why.
		rec = Received{Set: &credential.Set{}, Sources: rec.Sources, Systemd: rec.Systemd}
	}
	res := verify.Verify(m, verify.Input{Set: rec.Set, Compare: rec.Compare}, time.Now())
	d.mu.Lock()
	d.result, d.received = res, rec
	d.mu.Unlock()
	d.st.SetResult(res)
	d.st.SetSources(rec.Sources) // with the result: a scrape between them would mix two reads
	return res
}

// announce sets STATUS= and, the first time a verification passes, READY=1, then logs it; it
// returns whether it passed. READY=1 goes first: the units waiting for it need the verdict, not
// the log lines (one per credential: 3.6 M instructions at 253 credentials, make bench "instr").
func (d *daemon) announce(res verify.Result) bool {
	d.mu.Lock()
	rec := d.received
	first := !d.readySent
	if res.OK {
		d.readySent = true
	}
	d.mu.Unlock()
	// The summary names credentials and why they failed: escaped and bounded like any text
	// whose bytes came from a source (sdnotify.Text), so no newline can add a field.
	status := "STATUS=" + sdnotify.Text(res.Summary()+sourceNote(rec), 2048)
	if res.OK && first {
		_ = d.notify("READY=1\n" + status)
	} else {
		_ = d.notify(status)
	}
	for _, f := range res.Findings {
		attrs := []any{"name", f.Name, "status", string(f.Status), "bytes", f.Bytes, "source", f.Source, "detail", f.Detail}
		if !f.Secret && f.Value.Len() > 0 && f.Status != credential.StatusUnexpected {
			attrs = append(attrs, "value", string(f.Value.Bytes()))
		}
		switch {
		case f.Fails:
			d.log.Error("credential failed verification", attrs...)
		case f.Status == credential.StatusUnexpected:
			d.log.Warn("credential not in the manifest", attrs...)
		default:
			d.log.Info("credential", attrs...)
		}
	}
	for _, p := range rec.Set.Problems {
		d.log.Warn("skipped in source", "problem", p.Error())
	}
	for _, s := range rec.Sources {
		switch s.State {
		case sources.Failed, sources.Partial:
			d.log.Warn("credential source", "source", s.Name, "state", string(s.State), "detail", s.Detail, "rules", rec.Systemd.String())
		case sources.Unavailable:
			d.log.Info("credential source", "source", s.Name, "state", string(s.State), "detail", s.Detail)
		}
	}
	if res.OK {
		d.log.Info("verification passed", "verified", res.Verified, "expected", res.Expected, "sources", strings.Join(rec.Used, ","))
	} else {
		d.log.Error("verification FAILED: not signalling readiness", "failures", strings.Join(res.Failures(), "; "))
	}
	return res.OK
}

// sourceNote is "; sources: smbios partial, fwcfg error" for STATUS=, or "".
func sourceNote(r Received) string {
	var parts []string
	for _, s := range r.SourceProblems() {
		parts = append(parts, s.Name+" "+string(s.State))
	}
	if len(parts) == 0 {
		return ""
	}
	return "; sources: " + strings.Join(parts, ", ")
}

func (d *daemon) isReady() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.readySent
}

func (d *daemon) ackAccepted() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.accepted
}
