// Package ack is credlink's authenticated acknowledgement: the guest-agent proves to the host
// launcher that this VM received exactly the credentials it was sent, without any value crossing
// the channel, and the launcher answers with an authenticated verdict.
//
// # Keys and addresses
//
// The launcher generates 32 random bytes per launch and delivers them to the guest as the
// credential credlink.key, next to credlink.ack, the address to acknowledge to (see Address).
// Only the launcher and this guest hold the key; other VMs, earlier launches and other host
// processes do not.
//
// # Exchange
//
//	agent → host   Hello      {nonce: 16 bytes, boot_id, mac}
//	host  → agent  Challenge  {hello_nonce, nonce: 16 fresh random bytes}
//	agent → host   Report     MAC || JSON {version, nonce, vm, boot_id, agent, ok, credentials[]}
//	host  → agent  Verdict    MAC || JSON {nonce, accepted, reasons[], new_boot}
//
// Hello MAC = HMAC-SHA256(key, len‖"credlink/v1 hello", len‖nonce, len‖boot_id); report MAC = HMAC-SHA256(key, len‖"credlink/v1 report", len‖nonce, len‖body), verdict MAC the
// same with "credlink/v1 verdict"; every part is 8-byte length-prefixed. Each credential in the
// report carries HMAC-SHA256(key, len‖"credlink/v1 credential", len‖name, len‖value): the host,
// which knows what it sent, recomputes it and so confirms byte-exact delivery per credential.
// The key itself is never reported.
//
// The host verifies the MAC in constant time before parsing the body, then validates every
// field (validateReport: names by systemd's rules, statuses from verify.Statuses, sources from
// the agent's, bounded printable text; anything else makes the report malformed, with a reason
// the host words itself), and then requires: every
// credential it sent present with a matching MAC and length and status "ok", and the agent's own
// verification to have passed. Rejection reasons name credentials, never values.
//
// # Replay
//
// A report is only valid for the challenge nonce it is MACed with. The host draws a fresh nonce
// for every hello and forgets it after one report, so a recorded report — from an earlier boot,
// an earlier exchange or another VM — never verifies again; a report from an earlier launch fails
// because that launch's key is gone. The guest's boot id (in the report) lets the host tell a
// reboot (accepted as a new boot, Verdict.NewBoot) from an agent restart in the same boot.
// The hello nonce lets the agent, on a stream, ignore a challenge meant for an earlier run.
//
// # Floods
//
// Any process in the guest may be able to connect (cloud-hypervisor's hybrid vsock port is
// discoverable; an AF_VSOCK port can be learned), so the listener must let the real agent
// through whatever a process without the key does. A connection must open with a hello whose
// MAC proves the key within Server.HelloTimeout (2 s); a connection that has not done so is
// evictable, and when all Server.MaxConns (1,024) slots are busy the oldest evictable one is
// closed to admit the new one. Peers without the key therefore only ever hold slots nobody else
// needs; only key holders, who can stop the ack anyway, can fill the table. On the agent side
// an attempt turned away before its challenge (a full backlog, eviction: ErrBusy) is retried
// after about 10 ms instead of the growing backoff, for up to 2 s of consecutive refusals
// (Backoff.BusyFor), so that a host that is simply gone is not asked 100 times a second. What peers without the key cause is logged
// through a rate limiter (Server.Unauthenticated) and counted (Refused, Evicted, Dropped).
//
// # Framing
//
// Messages travel in frames with a magic, version, type, length (at most MaxPayload) and CRC-32C
// checksums of header and payload (see frame.go). On connection transports (Unix, AF_VSOCK,
// hybrid vsock) one connection is one exchange, bounded by a deadline; a malformed frame drops
// the connection. On virtio-serial, which is one stream for the VM's lifetime, the reader
// resynchronises after garbage and exchanges simply follow one another; a torn frame (a header
// whose payload never came) is abandoned as soon as the next valid header arrives, so the
// agent's next attempt gets through.
//
// # Transports
//
// Guest side: Address.Dialer (VsockDialer, SerialDialer, UnixDialer). Host side: Server.Serve
// on any net.Listener (package listen opens them: AF_VSOCK filtered to the VM's CID, hybrid
// vsock, private Unix sockets) and Server.ServeStreamListener for the virtio-serial chardev
// socket.
package ack
