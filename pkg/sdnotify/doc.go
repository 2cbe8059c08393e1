// Package sdnotify is the receiving end of systemd's sd_notify protocol: a unixgram socket that
// collects the READY=1, STATUS=… and STOPPING=1 messages a service sends to $NOTIFY_SOCKET.
// Tests and benchmarks use it to stand in for the service manager; the sending side is
// github.com/coreos/go-systemd/v22/daemon.
package sdnotify
