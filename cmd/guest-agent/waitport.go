package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/coreos/go-systemd/v22/activation"

	"github.com/credlink/credlink/pkg/ack"
	"github.com/credlink/credlink/pkg/credential"
	"github.com/credlink/credlink/pkg/logging"
)

// waitPort is guest-agent.service's ExecStartPre=+: when the host acknowledges over
// virtio-serial (credlink.ack = serial:NAME), wait until udev has created
// /dev/virtio-ports/NAME, so that PID 1's OpenFile= for the agent finds it. The agent may start
// before udev has handled the port (the module is loaded by udev itself). Any other transport,
// or no credlink.ack at all, returns at once. Exit 0 even on timeout: the agent then reports
// the missing channel itself; 2 for usage errors.
func waitPort(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("wait-port", flag.ContinueOnError)
	var dir string
	var timeout time.Duration
	waitPortFlags(fs, &dir, &timeout)
	if code, ok := parse("wait-port", fs, args, stdout, stderr); !ok {
		return code
	}
	log := logging.New(stderr, logging.UnderSystemd(), slog.LevelInfo)
	if dir == "" {
		dir = os.Getenv("CREDENTIALS_DIRECTORY")
	}
	if dir == "" {
		return exitOK // no credentials: nothing to acknowledge to
	}
	// As the agent reads credentials (credential.ReadFile: a regular file, bounded, no
	// symlink out of the directory); this runs as root before the agent (ExecStartPre=+).
	root, err := os.OpenRoot(dir)
	if errors.Is(err, os.ErrNotExist) {
		return exitOK
	}
	var b []byte
	if err == nil {
		defer root.Close()
		b, err = credential.ReadFile(root, credential.AckCredential)
	}
	if errors.Is(err, os.ErrNotExist) {
		return exitOK
	}
	if err != nil {
		log.Warn("cannot read the acknowledgement address", "err", err)
		return exitOK
	}
	addr, err := ack.ParseAddress(string(b)) // it trims
	if err != nil || addr.Kind != ack.KindSerial {
		return exitOK // the agent reports a bad address itself
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	if err := ack.WaitSerialPort(ctx, ack.SerialDir, addr.Name); err != nil {
		log.Warn("virtio-serial port for the acknowledgement not found", "port", addr.Name, "err", err)
		return exitOK
	}
	log.Info("virtio-serial port for the acknowledgement is there", "port", addr.Name, "waited", time.Since(start).Round(time.Millisecond))
	return exitOK
}

// waitPortFlags registers wait-port's flags; the help and the parser both use it.
func waitPortFlags(fs *flag.FlagSet, dir *string, timeout *time.Duration) {
	fs.StringVar(dir, "credentials-dir", "", "systemd credentials `DIR` (default $CREDENTIALS_DIRECTORY)")
	fs.DurationVar(timeout, "timeout", 30*time.Second, "give up waiting after `D`")
}

// passedFiles returns the files the service manager passed by name ($LISTEN_FDS and
// $LISTEN_FDNAMES, for this process only), and unsets those variables.
func passedFiles() map[string]*os.File {
	m := map[string]*os.File{}
	for _, f := range activation.Files(true) {
		m[f.Name()] = f
	}
	return m
}
