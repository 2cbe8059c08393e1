// Command vsockcheck runs inside the end-to-end guest, where vsock_loopback gives a real AF_VSOCK
// (this host's kernel has none): it listens with the host launcher's code (listen.Vsock on
// VMADDR_CID_ANY with a kernel-picked port), has the real guest-agent acknowledge to it over
// AF_VSOCK, and checks that a listener filtering for another CID refuses the same agent.
//
//	vsockcheck /path/to/guest-agent
package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/credlink/credlink/pkg/ack"
	"github.com/credlink/credlink/pkg/credential"
	"github.com/credlink/credlink/pkg/listen"
)

const loopbackCID = 1 // VMADDR_CID_LOCAL

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: vsockcheck GUEST-AGENT")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Println("vsockcheck:", err)
		os.Exit(1)
	}
}

func run(agent string) error {
	creds := []credential.Credential{
		{Name: "API_KEY", Value: credential.NewValue([]byte("vsock-check-value-0123456789-abcdefghijklmn"))},
		{Name: "BLOB", Value: credential.NewValue([]byte{0, 1, 2, 0xff})},
	}
	// 1. A listener for the right CID: the agent's report must be accepted.
	if err := attempt(agent, creds, loopbackCID, true); err != nil {
		return fmt.Errorf("right CID: %w", err)
	}
	fmt.Println("vsockcheck: accepted over AF_VSOCK")
	// 2. A listener for another CID: the connection is closed before any read.
	if err := attempt(agent, creds, 99, false); err != nil {
		return fmt.Errorf("wrong CID: %w", err)
	}
	fmt.Println("vsockcheck: connection from an unexpected CID refused")
	return nil
}

func attempt(agent string, creds []credential.Credential, filterCID uint32, wantAccepted bool) error {
	key := make([]byte, ack.KeySize)
	_, _ = rand.Read(key)
	l, err := listen.Vsock(filterCID, listen.PortAny)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	port := l.Port()
	results := make(chan ack.Result, 4)
	srv := &ack.Server{Key: key, Sent: creds, OnResult: func(r ack.Result) { results <- r }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Serve(ctx, l)

	all := append(append([]credential.Credential{}, creds...),
		credential.Credential{Name: credential.AckCredential, Value: credential.NewValue([]byte(fmt.Sprintf("vsock:%d:%d", loopbackCID, port)))},
		credential.Credential{Name: credential.KeyCredential, Value: credential.NewValue(key)})
	dir, err := os.MkdirTemp("", "vsockcheck")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := credential.WriteSMBIOSTree(filepath.Join(dir, "sys"), all, credential.DefaultBudget); err != nil {
		return err
	}
	manifest := filepath.Join(dir, "m.json")
	os.WriteFile(manifest, []byte(`{"credentials": {"API_KEY": {"bytes": 43}, "BLOB": {"bytes": 4}}}`), 0o600)
	cmd := exec.Command(agent, "run", "--source", "smbios", "--sysfs", filepath.Join(dir, "sys"), "--manifest", manifest,
		"--metrics-listen", "", "--ack-timeout", "3s")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stdout
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	select {
	case r := <-results:
		if !wantAccepted {
			return fmt.Errorf("a report reached a listener for CID %d: %+v", filterCID, r)
		}
		if !r.Accepted {
			return fmt.Errorf("report not accepted: %v", r.Reasons)
		}
		fmt.Printf("vsockcheck: peer %s\n", r.Peer)
		return nil
	case <-time.After(4 * time.Second):
		if wantAccepted {
			return fmt.Errorf("no acknowledgement over AF_VSOCK port %d", port)
		}
		if l.Refused.Load() == 0 {
			return fmt.Errorf("nothing was refused")
		}
		fmt.Printf("vsockcheck: %d connections from CID %d refused by a listener for CID %d\n", l.Refused.Load(), loopbackCID, filterCID)
		return nil
	}
}
