package launch

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/credlink/credlink/pkg/ack"
	"github.com/credlink/credlink/pkg/credential"
	"github.com/credlink/credlink/pkg/smbios"
)

// smuggle is what a key holder in the guest would like the host's service manager to read.
const smuggle = "\nREADY=1\nMAINPID=1"

func init() {
	// The test binary doubles as a hostile guest-agent that holds credlink.key (guest root, a
	// compromised agent): it reads the generated firmware table like the real agent and sends
	// an authentic report whose strings try to add fields to the host's notification.
	if os.Getenv("CREDLINK_FAKE") == "agent-hostile" {
		hostileAgent()
		os.Exit(0)
	}
}

func hostileAgent() {
	sysfs := ""
	for i, a := range os.Args {
		if a == "--sysfs" && i+1 < len(os.Args) {
			sysfs = os.Args[i+1]
		}
	}
	strs, err := smbios.ReadEntries(sysfs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hostile agent:", err)
		os.Exit(1)
	}
	set := credential.ParseOEMStrings(strs)
	addrC, _ := set.Get(credential.AckCredential)
	keyC, _ := set.Get(credential.KeyCredential)
	addr, err := ack.ParseAddress(string(addrC.Value.Bytes()))
	if err != nil {
		fmt.Fprintln(os.Stderr, "hostile agent:", err)
		os.Exit(1)
	}
	key := keyC.Value.Bytes()
	r := ack.Report{BootID: "boot-1", Agent: "hostile", OK: false}
	for _, c := range set.All() {
		if credential.IsControl(c.Name) {
			continue
		}
		r.Credentials = append(r.Credentials, ack.CredentialReport{Name: c.Name, Bytes: c.Value.Len(),
			Status: credential.Status("wrong_length" + smuggle), MAC: ack.CredentialMAC(key, c.Name, c.Value.Bytes())})
	}
	r.Credentials = append(r.Credentials, ack.CredentialReport{Name: "NEVER_SENT" + smuggle, Status: credential.StatusMissing})
	cl := &ack.Client{Key: key, Dialer: addr.Dialer(), Timeout: 5 * time.Second}
	_, err = cl.Exchange(context.Background(), r)
	fmt.Fprintln(os.Stderr, "hostile agent: exchange:", err)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	<-sig
}

// TestHostileGuestTextNeverReachesNotify: an authentic report from a key holder whose status
// and credential names carry newlines must not set a single field on the host's notify socket
// (systemd splits datagrams at newlines: READY=1, MAINPID= of a root service), nor start a log
// line of its own.
func TestHostileGuestTextNeverReachesNotify(t *testing.T) {
	e := newEnv(t)
	c := e.config(&Local{Agent: testBin})
	t.Setenv("CREDLINK_FAKE", "agent-hostile")
	out, err := c.Run(context.Background(), nil)
	if err == nil || out.Ready {
		t.Fatalf("hostile report accepted: %+v %v", out, err)
	}
	allowed := map[string]bool{"STATUS": true, "STOPPING": true, "READY": true}
	sawFailure := false
	for _, m := range e.notify.Messages() {
		for k, v := range m.Fields {
			if !allowed[k] {
				t.Errorf("notification set %s=%s: %q", k, v, m.Raw)
			}
		}
		if m.Fields["READY"] == "1" {
			t.Errorf("READY=1 after a hostile report: %q", m.Raw)
		}
		if strings.Contains(m.Raw, "MAINPID") {
			t.Errorf("guest text in a notification: %q", m.Raw)
		}
		if strings.HasPrefix(m.Fields["STATUS"], "Failed") {
			sawFailure = true
		}
	}
	if !sawFailure {
		t.Errorf("no failure status among %q", e.statuses())
	}
	for _, line := range strings.Split(e.logs.String(), "\n") {
		if strings.HasPrefix(line, "READY=") || strings.HasPrefix(line, "MAINPID=") {
			t.Errorf("guest text starts a log line: %q", line)
		}
	}
	t.Logf("reasons: %q", out.Reasons)
}
