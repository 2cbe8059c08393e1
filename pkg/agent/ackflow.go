package agent

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/credlink/credlink/pkg/ack"
	"github.com/credlink/credlink/pkg/credential"
)

// bootID identifies this boot of the guest, so the host can tell a reboot from a restart.
func (o *Options) bootID() string {
	p := o.BootIDPath
	if p == "" {
		p = "/proc/sys/kernel/random/boot_id"
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

// report builds the acknowledgement for the last verification: every received credential
// (listed or not, control credentials excluded) with its MAC, and every listed one that is
// missing or invalid without.
func (d *daemon) report(key []byte) ack.Report {
	d.mu.Lock()
	res, rec := d.result, d.received
	d.mu.Unlock()
	r := ack.Report{BootID: d.o.bootID(), Agent: d.o.Version, OK: res.OK}
	if vm, ok := rec.control(credential.VMCredential); ok {
		r.VM = strings.TrimSpace(string(vm.Value.Bytes()))
	}
	seen := map[string]bool{}
	mac := ack.NewCredentialMAC(key)
	add := func(name string, status credential.Status, src string, c *credential.Credential) {
		cr := ack.CredentialReport{Name: name, Status: status, Source: src}
		if c != nil {
			cr.Bytes = c.Value.Len()
			cr.MAC = mac(name, c.Value.Bytes())
		}
		r.Credentials = append(r.Credentials, cr)
		seen[name] = true
	}
	for _, f := range res.Findings {
		if c, ok := rec.Set.Get(f.Name); ok {
			add(f.Name, f.Status, c.Source, &c)
		} else {
			add(f.Name, f.Status, "", nil)
		}
	}
	for _, c := range rec.Set.All() { // unlisted ones the manifest says to ignore
		if !seen[c.Name] && !credential.IsControl(c.Name) {
			add(c.Name, credential.StatusUnexpected, c.Source, &c)
		}
	}
	return r
}

// startAck acknowledges in the background when the host delivered credlink.ack and
// credlink.key. done closes when the acknowledgement ends (accepted, rejected or given up),
// firstTry when its first exchange does (or at once when there is nothing to acknowledge).
func (d *daemon) startAck(ctx context.Context) (done, firstTry <-chan struct{}) {
	doneC, firstC := make(chan struct{}), make(chan struct{})
	var firstOnce sync.Once
	endFirst := func() { firstOnce.Do(func() { close(firstC) }) }
	done, firstTry = doneC, firstC
	d.mu.Lock()
	rec := d.received
	d.mu.Unlock()
	addrCred, okA := rec.control(credential.AckCredential)
	keyCred, okK := rec.control(credential.KeyCredential)
	if !okA || !okK {
		d.log.Info("no credlink.ack/credlink.key credentials: not acknowledging to a host")
		close(doneC)
		endFirst()
		return
	}
	addr, err := ack.ParseAddress(string(addrCred.Value.Bytes()))
	if err != nil {
		d.log.Error("cannot acknowledge", "err", err)
		close(doneC)
		endFirst()
		return
	}
	key := keyCred.Value.Bytes()
	timeout := d.o.AckTimeout
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	dialer := addr.Dialer()
	if addr.Kind == ack.KindSerial {
		if f, ok := d.o.PassedFiles[addr.Name]; ok {
			dialer = ack.SerialFileDialer{File: f}
			d.log.Info("acknowledging over the virtio-serial port opened by the service manager", "port", addr.Name)
		} else {
			names := make([]string, 0, len(d.o.PassedFiles))
			for n := range d.o.PassedFiles {
				names = append(names, strconv.Quote(n))
			}
			d.log.Info("no descriptor for the virtio-serial port from the service manager (OpenFile=); opening it directly",
				"port", addr.Name, "passed", strings.Join(names, ","))
		}
	}
	client := &ack.Client{Key: key, Dialer: dialer}
	rep := d.report(key)
	go func() {
		defer close(doneC)
		defer endFirst()
		actx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		v, err := client.Acknowledge(actx, rep, ack.Backoff{}, func(a ack.Attempt) {
			d.st.ObserveAck(a.Result, a.RTT, time.Now())
			endFirst()
			if a.Result == ack.ResultError {
				d.log.Debug("acknowledgement attempt failed", "attempt", a.N, "err", a.Err)
			}
		})
		switch {
		case err == nil:
			d.mu.Lock()
			d.accepted = true
			d.mu.Unlock()
			d.log.Info("host accepted the acknowledgement", "addr", addr.String(), "new_boot", v.NewBoot)
		case len(v.Reasons) > 0:
			d.log.Error("host rejected the acknowledgement", "addr", addr.String(), "reasons", strings.Join(v.Reasons, "; "))
		default:
			d.log.Error("could not acknowledge to the host", "addr", addr.String(), "err", err)
		}
	}()
	// On a one-vCPU guest the new goroutine would otherwise wait for this one to block; let it
	// send its hello first (it yields back when it waits for the host's challenge).
	runtime.Gosched()
	return
}

func (d *daemon) waitAck(ctx context.Context, done <-chan struct{}) {
	select {
	case <-done:
	case <-ctx.Done():
	}
}

func (d *daemon) waitAckBriefly(done <-chan struct{}) {
	select {
	case <-done:
	case <-time.After(time.Second):
	}
}
