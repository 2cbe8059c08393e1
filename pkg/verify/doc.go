// Package verify compares the credentials a guest received with its manifest and produces one
// finding per credential: ok, missing, wrong_length, digest_mismatch, invalid (malformed in the
// source), unexpected (not listed) or source_mismatch (SMBIOS and the systemd credentials
// directory disagree). Findings carry names, lengths and sources; a value only for credentials
// the manifest marks as not secret.
package verify
