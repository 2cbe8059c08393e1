// Package logging builds credlink's log/slog handlers. Under systemd (JOURNAL_STREAM or
// INVOCATION_ID set) lines carry a sd-daemon priority prefix such as "<3>" and no timestamp,
// since journald adds both the time and the priority from that prefix; elsewhere they are plain
// logfmt with a timestamp. Limiter logs what unauthenticated peers cause at a bounded rate,
// counting the rest.
package logging
