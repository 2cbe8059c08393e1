package launch

import (
	"fmt"
	"os/exec"
	"syscall"
	"time"
)

// process is a child the launcher supervises: the hypervisor, or the local guest-agent.
type process struct {
	cmd  *exec.Cmd
	exit chan struct{} // closed when the child has been reaped
	err  error         // its exit status, valid after exit is closed
}

func newProcess(cmd *exec.Cmd) process {
	// The child must not outlive the launcher, even one killed with SIGKILL.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return process{cmd: cmd, exit: make(chan struct{})}
}

// startProcess starts the child and reaps it in the background.
func (p *process) startProcess() error {
	if err := p.cmd.Start(); err != nil {
		return err
	}
	go func() { p.err = p.cmd.Wait(); close(p.exit) }()
	return nil
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
