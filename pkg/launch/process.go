package launch

import (
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// process is a child the launcher supervises: the hypervisor, or the local guest-agent.
type process struct {
	cmd  *exec.Cmd
	exit chan struct{} // closed when the child has been reaped
	err  error         // its exit status, valid after exit is closed
}

// serviceEnv is what systemd gives the launcher's service for the launcher alone
// (sd_notify(3), sd_listen_fds(3), systemd.exec(5) $CREDENTIALS_DIRECTORY): a child that saw it
// could send READY=1 or STATUS= in the launcher's name, feed its watchdog, or find the
// credentials' directory.
var serviceEnv = []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "CREDENTIALS_DIRECTORY"}

// newProcess prepares cmd as a supervised child: killed with the launcher, and without the
// service's own environment (serviceEnv).
func newProcess(cmd *exec.Cmd) process {
	// The child must not outlive the launcher, even one killed with SIGKILL.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	env := cmd.Env
	if env == nil {
		env = os.Environ()
	}
	cmd.Env = filterEnv(env, serviceEnv...)
	return process{cmd: cmd, exit: make(chan struct{})}
}

// noCoreDumps sets RLIMIT_CORE to 0, soft and hard, for this process and so for every child it
// starts. The launcher itself is non-dumpable (HardenProcess), but execve makes the hypervisor
// (and the local agent) dumpable again, and a child inherits the service's RLIMIT_CORE —
// unlimited by systemd's default — so a crash of QEMU would write a core with every OEM string
// and credlink.key in it. The hard limit is 0 too, so that the child cannot raise it;
// systemd-coredump also honours a zero limit of a process whose core_pattern pipes to it.
var noCoreDumps = sync.OnceValue(func() error {
	return unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: 0, Max: 0})
})

// startProcess starts the child and reaps it in the background; never with core dumps allowed.
func (p *process) startProcess() error {
	if err := noCoreDumps(); err != nil {
		return fmt.Errorf("disable core dumps (RLIMIT_CORE=0) before starting %s: %w", p.cmd.Path, err)
	}
	pidfd := -1
	p.cmd.SysProcAttr.PidFD = &pidfd
	if err := p.cmd.Start(); err != nil {
		return err
	}
	go func() {
		awaitExit(pidfd)
		p.err = p.cmd.Wait()
		close(p.exit)
	}()
	return nil
}

// awaitExit waits, through the runtime's netpoller, until the process behind pidfd has exited
// (a pidfd polls readable then), and closes pidfd. Waiting in wait4 instead would hold an OS
// thread for the child's lifetime: a tenth of a waiting launcher's threads, which count against
// kernel.pid_max on a host running thousands of VMs. Without a pidfd (pidfd < 0) it returns at
// once and the caller's Wait blocks as before.
//
// Before each wait it asks the kernel (pidfdExited): RawConn.Read forgets a readiness event that
// arrived before the call (internal/poll prepareRead resets it, the runtime's epoll is
// edge-triggered), so a child that exited between os.NewFile registering the pidfd and the wait
// would never be noticed. With that check an idle launcher is not woken at all until its child
// exits (before it was, every 2 s, to recover such missed wake-ups).
func awaitExit(pidfd int) {
	if pidfd < 0 {
		return
	}
	if err := syscall.SetNonblock(pidfd, true); err != nil {
		syscall.Close(pidfd)
		return
	}
	f := os.NewFile(uintptr(pidfd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	// Read calls the function, waits for readability when it returns false, and calls it again:
	// an event after the check wakes the wait, one before it is seen by the check.
	_ = rc.Read(func(uintptr) bool { return pidfdExited(pidfd) })
}

// pidfdExited reports whether the process behind pidfd has exited (pidfd_open(2): the pidfd
// polls readable once it has).
func pidfdExited(pidfd int) bool {
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 0)
	return err != nil || n > 0
}

func (p *process) done() <-chan struct{} { return p.exit }
func (p *process) exitErr() error        { return p.err }

func (p *process) pid() int {
	if p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

func (p *process) started() bool { return p.cmd.Process != nil }

func (p *process) exited() bool {
	select {
	case <-p.exit:
		return true
	default:
		return false
	}
}

// waitExit waits up to d for the child to exit.
func (p *process) waitExit(d time.Duration) bool {
	select {
	case <-p.exit:
		return true
	case <-time.After(d):
		return false
	}
}

// terminate sends SIGTERM, waits up to grace, then kills.
func (p *process) terminate(grace time.Duration) error {
	if !p.started() || p.exited() {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if p.waitExit(grace) {
		return nil
	}
	_ = p.cmd.Process.Kill()
	<-p.exit
	return fmt.Errorf("%s did not stop within %v; killed", p.cmd.Path, grace)
}
