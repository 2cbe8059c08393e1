// Package sdnotify speaks systemd's sd_notify protocol. The sending side (Encode, Notify) builds
// a datagram from fields and refuses any field that would change its meaning: systemd splits a
// datagram at newlines, so a newline inside a value — say, text that came from a guest — would
// add assignments such as READY=1 or MAINPID= of the sender's choosing; Text escapes and bounds
// such text first. The receiving end is a unixgram socket that collects the READY=1, STATUS=…
// and STOPPING=1 messages a service sends to $NOTIFY_SOCKET; tests and benchmarks use it to
// stand in for the service manager.
package sdnotify
