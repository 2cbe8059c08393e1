package launch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"

	"github.com/credlink/credlink/pkg/ack"
	"github.com/credlink/credlink/pkg/listen"
	"github.com/credlink/credlink/pkg/logging"
	"github.com/credlink/credlink/pkg/rundir"
	"github.com/credlink/credlink/pkg/sdnotify"
)

// Exit codes.
const (
	ExitOK           = 0
	ExitNotDelivered = 1
	ExitConfig       = 2
	ExitHypervisor   = 3
)

// Outcome is what a launch achieved.
type Outcome struct {
	Ready         bool
	Accepted      *ack.Result // the accepted (or definitively rejected) report
	Reasons       []string    // why delivery was not verified
	Transport     string
	Started       time.Time
	ReadyAt       time.Time     // READY=1 sent
	AckToReady    time.Duration // report received → READY=1 sent
	HypervisorPID int
	// GuestBootWaited says READY=1 also waited for the guest systemd's own READY=1.
	GuestBootWaited bool
}

// ErrNotDelivered is returned when the guest did not confirm delivery.
var ErrNotDelivered = errors.New("credential delivery not verified")

// ErrHypervisor is returned when the hypervisor failed.
var ErrHypervisor = errors.New("hypervisor failed")

// ExitCode maps Run's error to the process exit status.
func ExitCode(err error) int {
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, ErrConfig):
		return ExitConfig
	case errors.Is(err, ErrHypervisor):
		return ExitHypervisor
	default:
		return ExitNotDelivered
	}
}

// HardenProcess is for every command that reads credentials (run, plan, demo), before it reads
// them: non-dumpable (no core dump, no ptrace or /proc/PID/mem reads by other processes of the
// same user) and RLIMIT_CORE 0, soft and hard, which its children inherit (noCoreDumps).
func HardenProcess() error {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("PR_SET_DUMPABLE: %w", err)
	}
	if err := noCoreDumps(); err != nil {
		return fmt.Errorf("RLIMIT_CORE=0: %w", err)
	}
	return nil
}

func (c *Config) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// maxStatus bounds STATUS= text: reasons name credentials, and there may be 255 of them.
const maxStatus = 2048

// notify sends one notification to the service manager. STATUS= text is escaped and bounded
// first (sdnotify.Text): it carries error messages and the reasons derived from the guest's
// report. The sender (sdnotify.Encode) refuses whatever is still unsafe — a newline inside a
// field would add fields of the guest's choosing — and then nothing is sent.
func (c *Config) notify(fields ...sdnotify.Field) {
	if c.Notify == nil {
		return
	}
	for i, f := range fields {
		if f.Key == "STATUS" {
			fields[i].Value = sdnotify.Text(f.Value, maxStatus)
		}
	}
	s, err := sdnotify.Encode(fields...)
	if err != nil {
		c.logger().Error("notification not sent", "err", err)
		return
	}
	_ = c.Notify(s)
}

func (c *Config) defaults() {
	if c.AckTimeout <= 0 {
		c.AckTimeout = 5 * time.Minute
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.OnFailure == "" {
		c.OnFailure = FailStop
	}
	if c.Stdout == nil {
		c.Stdout = os.Stdout
	}
	if c.Stderr == nil {
		c.Stderr = os.Stderr
	}
}

// makeRunDir creates the launch's private directory (0700), first removing what launches killed
// without a chance to clean up left in the same base (pkg/rundir): the sockets, and in local
// mode the generated SMBIOS tree with every credential in it.
func (c *Config) makeRunDir() (*rundir.Dir, error) {
	base := c.RuntimeDir
	if base == "" {
		base = os.Getenv("RUNTIME_DIRECTORY")
	}
	if base == "" {
		base = os.TempDir()
	}
	return rundir.Create(base, c.VM)
}

// asConfig marks err as a configuration error unless it already is one.
func asConfig(err error) error {
	if err == nil || errors.Is(err, ErrConfig) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrConfig, err)
}

// setup validates the configuration, opens the hypervisor's VM with its acknowledgement
// channel, encodes the credentials (the channel's address among them) and hands them to the VM,
// starting nothing but the channel's listeners. The caller must call cleanup.
func (c *Config) setup() (vm machine, p *Prepared, cleanup func(), err error) {
	c.defaults()
	if err := c.validate(); err != nil {
		return nil, nil, func() {}, err
	}
	rd, err := c.makeRunDir()
	if err != nil {
		return nil, nil, func() {}, asConfig(fmt.Errorf("runtime directory: %w", err))
	}
	runDir := rd.Path
	removeDir := func() { rd.Remove() }
	// Whatever fails before the hypervisor starts — flags, credentials, budget, but also a
	// runtime directory that is missing, full or too deep for a socket path — is the
	// configuration's (exit 2): nothing was launched, and retrying as is cannot help.
	fail := func(err error) (machine, *Prepared, func(), error) {
		if vm != nil {
			vm.channel().close()
		}
		removeDir()
		return nil, nil, func() {}, asConfig(err)
	}
	vm, err = c.Hypervisor.open(Spec{
		VM: c.VM, RuntimeDir: runDir, GuestCID: c.GuestCID, GuestNotify: c.WaitGuestBoot,
		Manifest: c.ManifestPath, GuestSystemd: c.GuestSystemd, Stdout: c.Stdout, Stderr: c.Stderr,
	})
	if err != nil {
		return fail(err)
	}
	ch := vm.channel()
	if c.WaitGuestBoot && ch.notify == nil {
		return fail(configErr("--wait-guest-boot needs a vsock channel to the guest (systemd sends vmm.notify_socket over AF_VSOCK); --hypervisor %s acknowledges over %s", c.Hypervisor.Name(), ch.kind))
	}
	var other []string
	if o, ok := vm.(otherOEMer); ok {
		other = o.otherOEM()
	}
	if p, err = c.prepare(ch.addr, ch.notifyAddr, other); err != nil {
		return fail(err)
	}
	p.runDir = runDir
	if err := vm.load(p.Structures); err != nil {
		return fail(err)
	}
	return vm, p, func() { ch.close(); removeDir() }, nil
}

// otherOEMer is a machine whose configuration brings OEM strings of its own, delivered in the
// same Type 11 structure after the credentials (cloud-hypervisor's --vm-config).
type otherOEMer interface{ otherOEM() []string }

// warnings are what a launch would do that is allowed but likely a mistake: an empty credential
// without a --manifest to say whether empty is right (an empty file is what a failed secret
// fetch leaves behind, and the guest would verify 0 bytes as delivered).
func (c *Config) warnings(p *Prepared) []string {
	if c.ManifestPath != "" {
		return nil
	}
	var out []string
	for _, u := range p.User {
		if u.Value.Len() == 0 {
			out = append(out, fmt.Sprintf("credential %s is empty (0 bytes) and no --manifest says whether that is right; the guest receives an empty value", u.Name))
		}
	}
	return out
}

// Plan validates everything and describes the launch, secrets redacted, without starting it.
func (c *Config) Plan() ([]string, error) {
	vm, p, cleanup, err := c.setup()
	defer cleanup()
	if err != nil {
		return nil, err
	}
	t := vm.channel()
	out := []string{fmt.Sprintf("vm %s: %d credentials + %d control credentials, %d OEM strings in %s; import rules of %s",
		c.VM, len(p.User), len(p.Control), len(p.OEM), describeStructures(p.Structures), c.GuestSystemd)}
	for i := range p.OEM {
		out = append(out, "  credential "+p.describe(i))
	}
	for _, w := range c.warnings(p) {
		out = append(out, "warning: "+w)
	}
	out = append(out, fmt.Sprintf("acknowledgement: %s via %s, timeout %v, on failure %s", t.addr, t.kind, c.AckTimeout, c.OnFailure))
	if t.notify != nil {
		out = append(out, "guest systemd READY=1 awaited at "+t.notifyAddr+" (vmm.notify_socket)")
	}
	return append(out, vm.plan()...), nil
}

// Run launches the VM and supervises it until ctx ends (graceful stop, nil error) or the
// hypervisor exits. onReady, if set, is called once READY=1 has been sent.
func (c *Config) Run(ctx context.Context, onReady func(Outcome)) (Outcome, error) {
	out := Outcome{Started: time.Now()}
	log := c.logger().With("vm", c.VM)
	vm, p, cleanup, err := c.setup()
	defer cleanup()
	if err != nil {
		c.notify(sdnotify.Status("Configuration error: " + err.Error()))
		return out, err
	}
	t := vm.channel()
	hv := c.Hypervisor.Name()
	out.Transport = t.addr.String() + " via " + t.kind

	results := make(chan ack.Result, 16)
	sctx, stopServing := context.WithCancel(context.Background())
	// Everything peers without the key cause — on the ack channel and the guest's notify
	// socket — shares one rate limit: a flood must not fill the journal.
	unauth := &logging.Limiter{Logger: log}
	defer unauth.Flush("unauthenticated events not logged individually")
	srv := &ack.Server{Key: p.Key, Sent: p.User, VM: c.VM, Logger: log, Unauthenticated: unauth,
		OnResult: func(r ack.Result) {
			if !r.Authenticated {
				select { // a flood of junk must neither block the listener nor crowd out the real report
				case results <- r:
				default:
				}
				return
			}
			select { // an authentic report is never dropped
			case results <- r:
			case <-sctx.Done():
			}
		}}
	// Any VM can connect to any host vsock port: connections from other CIDs are closed unread
	// (listen.CIDFilter) and said so here, within the same rate limit. Set before serving starts.
	if f, ok := t.listener.(*listen.CIDFilter); ok {
		f.OnRefuse = func(peer net.Addr) {
			unauth.Warn("refused a vsock connection from another VM before reading it", "peer", peer.String(), "expected_cid", f.CID)
		}
	}
	served := make(chan struct{})
	go func() { defer close(served); _ = t.serve(sctx, srv) }()
	defer func() { stopServing(); <-served }()

	guestMsgs := make(chan guestMessage, 16)
	if t.notify != nil {
		go serveGuestNotify(sctx, t.notify, guestMsgs, unauth)
	}
	guestReady := t.notify == nil // nothing to wait for without --wait-guest-boot
	var guestStatus statusLog
	defer func() {
		if guestStatus.total > 0 {
			log.Info("guest systemd status repeats not logged", "count", guestStatus.total)
		}
	}()

	c.notify(sdnotify.Status("Starting " + hv))
	for _, w := range c.warnings(p) {
		log.Warn(w)
	}
	log.Info("starting", "hypervisor", hv, "credentials", len(p.User), "ack", t.addr.String(), "transport", t.kind)
	if err := vm.start(ctx); err != nil {
		if ctx.Err() != nil { // stopped during set-up: a clean stop, not a failure
			c.notify(sdnotify.Stopping, sdnotify.Status("Stopped while starting "+hv))
			log.Info("stop requested while the hypervisor was starting")
			stopVM(vm, c.ShutdownTimeout, log)
			return out, nil
		}
		c.notify(sdnotify.Status("Failed to start " + hv + ": " + err.Error()))
		return out, fmt.Errorf("%w: %w", ErrHypervisor, err)
	}
	out.HypervisorPID = vm.pid()
	if r, ok := vm.(interface{ release() }); ok {
		defer r.release()
	}
	wd := watchdog()
	defer wd.stop()

	deadline := time.NewTimer(c.AckTimeout)
	defer deadline.Stop()
	statusTick := time.NewTicker(statusEvery)
	defer statusTick.Stop()
	c.notify(sdnotify.Status(waitingStatus(c.VM, false, 0)))

	var failure []string
wait:
	for {
		if out.Accepted != nil && out.Accepted.Accepted && guestReady {
			break
		}
		select {
		case m := <-guestMsgs:
			logGuestMessage(unauth, &guestStatus, m)
			if m.Fields["READY"] == "1" {
				guestReady = true
			}
		case r := <-results:
			switch {
			case !r.Authenticated:
				// ack.Server has logged it, rate-limited; nothing of it is the VM's word.
			case r.Accepted:
				out.Accepted = &r
				if !guestReady {
					c.notify(sdnotify.Status(waitingStatus(c.VM, true, 0)))
				}
			default:
				out.Accepted = &r
				failure = r.Reasons
				break wait
			}
		case <-deadline.C:
			if out.Accepted != nil {
				failure = []string{fmt.Sprintf("guest systemd did not report READY=1 within %v", c.AckTimeout)}
			} else {
				failure = []string{fmt.Sprintf("no acknowledgement within %v", c.AckTimeout)}
			}
			break wait
		case <-vm.done():
			c.notify(sdnotify.Status("Failed: " + hv + " exited before acknowledging: " + describeExit(vm.exitErr())))
			log.Error("hypervisor exited before the guest acknowledged", "status", describeExit(vm.exitErr()))
			out.Reasons = []string{hv + " exited before acknowledging: " + describeExit(vm.exitErr())}
			return out, fmt.Errorf("%w: exited before the acknowledgement: %s", ErrHypervisor, describeExit(vm.exitErr()))
		case <-ctx.Done():
			c.notify(sdnotify.Stopping, sdnotify.Status("Stopping before acknowledgement"))
			log.Info("stop requested while waiting for the acknowledgement")
			stopVM(vm, c.ShutdownTimeout, log)
			return out, nil
		case <-statusTick.C:
			c.notify(sdnotify.Status(waitingStatus(c.VM, out.Accepted != nil, time.Since(out.Started))))
		case <-wd.c():
			wd.ping(vm, c.notify)
		}
	}

	if failure != nil {
		out.Reasons = failure
		msg := "Failed: " + strings.Join(failure, "; ")
		log.Error("credential delivery not verified", "reasons", strings.Join(failure, "; "))
		if c.OnFailure == FailStop {
			c.notify(sdnotify.Status(msg + "; stopping VM"))
			stopVM(vm, c.ShutdownTimeout, log)
			c.notify(sdnotify.Status(msg))
			return out, fmt.Errorf("%w: %s", ErrNotDelivered, strings.Join(failure, "; "))
		}
		c.notify(sdnotify.Ready, sdnotify.Status("Degraded (ready anyway): "+strings.Join(failure, "; ")))
		out.ReadyAt = time.Now()
	} else {
		c.notify(sdnotify.Ready, sdnotify.Status(fmt.Sprintf("Ready: %d/%d credentials delivered byte-exact", len(p.User), len(p.User))))
		out.ReadyAt = time.Now()
		out.Ready = true
		out.AckToReady = out.ReadyAt.Sub(out.Accepted.Received)
		out.GuestBootWaited = t.notify != nil
		log.Info("guest acknowledged: credentials delivered byte-exact", "credentials", len(p.User),
			"boot_id", out.Accepted.Report.BootID, "exchange", out.Accepted.Received.Sub(out.Accepted.Started),
			"ack_to_ready", out.AckToReady, "since_start", out.ReadyAt.Sub(out.Started))
	}
	if onReady != nil {
		onReady(out)
	}

	afterReady := &logging.Limiter{Logger: log}
	defer afterReady.Flush("guest problem reports after READY=1 not logged individually")
	for {
		select {
		case r := <-results:
			logAfterReady(log, afterReady, r)
		case <-vm.done():
			err := vm.exitErr()
			if err != nil {
				c.notify(sdnotify.Status(hv + " failed: " + describeExit(err)))
				log.Error("hypervisor failed", "status", describeExit(err))
				return out, fmt.Errorf("%w: %s", ErrHypervisor, describeExit(err))
			}
			c.notify(sdnotify.Status("VM shut down"))
			log.Info("VM shut down")
			return out, nil
		case <-ctx.Done():
			c.notify(sdnotify.Stopping, sdnotify.Status("Shutting down "+c.VM))
			log.Info("shutting down")
			stopVM(vm, c.ShutdownTimeout, log)
			return out, nil
		case m := <-guestMsgs:
			logGuestMessage(unauth, &guestStatus, m)
		case <-wd.c():
			wd.ping(vm, c.notify)
		}
	}
}

// stopVM stops the VM on request (SIGTERM to the launcher) and logs how: by itself after the
// power button, or forced.
func stopVM(vm machine, timeout time.Duration, log *slog.Logger) {
	t0 := time.Now()
	if err := vm.stop(timeout); err != nil {
		log.Warn("shutdown", "err", err)
		return
	}
	log.Info("VM stopped", "after", time.Since(t0).Round(time.Millisecond))
}

// logAfterReady logs an authenticated result that arrives after READY=1 (a guest reboot or an
// agent reload). A rejection is the guest key holder's word, which it may repeat at will: it goes
// through lim (its reasons are bounded by ack.Server), so a looping guest cannot fill the journal.
func logAfterReady(log *slog.Logger, lim *logging.Limiter, r ack.Result) {
	switch {
	case !r.Authenticated:
	case r.Accepted && r.NewBoot:
		log.Info("guest rebooted and acknowledged again", "boot_id", r.Report.BootID)
	case !r.Accepted:
		lim.Log(slog.LevelError, "guest reports a problem after a reboot or reload", "reasons", strings.Join(r.Reasons, "; "))
	}
}

func describeExit(err error) string {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return "exit status 0"
	case errors.As(err, &ee):
		return ee.ProcessState.String()
	default:
		return err.Error()
	}
}

// waitingStatus is the STATUS= of a launcher still starting: waiting for the acknowledgement, or
// (acknowledged) for the guest's systemd's READY=1; elapsed > 0 adds the seconds since start.
func waitingStatus(vm string, acknowledged bool, elapsed time.Duration) string {
	s := "Waiting for acknowledgement from " + vm
	if acknowledged {
		s = "Acknowledged; waiting for the guest's systemd to report READY=1"
	}
	if elapsed > 0 {
		s += fmt.Sprintf(" (%ds)", int(elapsed.Seconds()))
	}
	return s
}

// statusEvery is how often a waiting launcher refreshes the elapsed seconds in its STATUS=.
// systemd's PID 1 receives, checks and stores every notification (src/core/manager.c,
// manager_dispatch_notify_fd), and `systemctl status` shows since when the unit is activating
// anyway. A refresh wakes the launcher (about 0.3 ms of CPU with the runtime's sysmon): at
// 10,000 VMs booting, a per-second counter was 10,000 datagrams a second to PID 1 and 3 s of
// CPU a second; every 30 s it is 333 and 0.1 s.
const statusEvery = 30 * time.Second

// wdog sends WATCHDOG=1 every half WatchdogSec= while the hypervisor is alive, when systemd asked
// for it; without WatchdogSec= it has no ticker, and a launcher with nothing to do is not woken.
type wdog struct{ t *time.Ticker }

func watchdog() *wdog {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil || d <= 0 {
		return &wdog{}
	}
	return &wdog{t: time.NewTicker(d / 2)}
}

// c is the ticker's channel, nil (never ready) without a watchdog.
func (w *wdog) c() <-chan time.Time {
	if w.t == nil {
		return nil
	}
	return w.t.C
}

func (w *wdog) stop() {
	if w.t != nil {
		w.t.Stop()
	}
}

// ping sends WATCHDOG=1 through notify (Config.notify: the same channel as every other
// notification, so a library caller's Notify sees it too).
func (w *wdog) ping(vm machine, notify func(...sdnotify.Field)) {
	select {
	case <-vm.done():
		return // a dead hypervisor gets no keep-alive: systemd's watchdog will act
	default:
	}
	notify(sdnotify.Watchdog)
}
