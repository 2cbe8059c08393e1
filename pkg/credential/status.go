package credential

import "slices"

// Status is the verdict on one received credential. guest-agent decides it (package verify),
// sends it to the host in its acknowledgement report (package ack, JSON "status"), and exports
// it as the status label of credlink_credential_state (package metrics).
type Status string

// The statuses, in the order metrics export them.
const (
	StatusOK             Status = "ok"
	StatusMissing        Status = "missing"         // listed, not received
	StatusWrongLength    Status = "wrong_length"    // outside the manifest's bytes / min_bytes / max_bytes
	StatusDigestMismatch Status = "digest_mismatch" // SHA-256 differs from the manifest's sha256
	StatusInvalid        Status = "invalid"         // present but skipped on import (name, base64, size)
	StatusUnexpected     Status = "unexpected"      // received, not in the manifest
	StatusSourceMismatch Status = "source_mismatch" // sources disagree on the bytes
)

// Statuses lists every status, for metrics that export one series per status.
var Statuses = []Status{StatusOK, StatusMissing, StatusWrongLength, StatusDigestMismatch, StatusInvalid, StatusUnexpected, StatusSourceMismatch}

// Known reports whether s is one of Statuses. A status read from the wire that is not known
// must not be echoed (it comes from the guest).
func (s Status) Known() bool { return slices.Contains(Statuses, s) }
