// Package agent is guest-agent's logic: it reads the credentials the guest received from the
// configured sources, verifies them against the manifest, reports to systemd (sd_notify), to
// Prometheus (package metrics) and to the host (package ack), and re-verifies on reload.
//
// Failure mode: when verification fails the agent does not send READY=1. It stays up, keeps
// serving metrics and names the failing credentials in STATUS= and the log, so that units that
// Requires=/After= it never start with bad credentials while monitoring still sees why; the
// shipped unit sets TimeoutStartSec=infinity for that reason. With OnFailure "exit" it instead
// exits 1 once the host has been told, which fails dependents at once.
package agent
