package credential

import (
	"fmt"

	"github.com/credlink/credlink/pkg/smbios"
)

// Systemd is the version of the systemd whose import rules apply: the guest's PID 1 on the
// agent's side, --guest-systemd on the launcher's. The zero value means unknown, and the
// rules of [SystemdLatest] apply.
type Systemd int

// Versions at which a rule credlink models changed.
const (
	// SystemdFirstSMBIOS is the first systemd that imports credentials from SMBIOS Type 11.
	SystemdFirstSMBIOS Systemd = 252
	// SystemdVMMNotify is the first that sends READY=1 to vmm.notify_socket (src/core/manager.c).
	SystemdVMMNotify Systemd = 254
	// SystemdURLSafeBase64 is the first whose unbase64mem also accepts '-' and '_'
	// (src/basic/hexdecoct.c, unbase64char; systemd PR 29848).
	SystemdURLSafeBase64 Systemd = 255
	// SystemdFullEntryRead is the first that reads a whole Type 11 entry instead of one page
	// (src/shared/smbios11.c, read_smbios11_field; systemd PR 33539).
	SystemdFullEntryRead Systemd = 257
	// SystemdLatest is the newest behaviour credlink models; later versions read like it.
	SystemdLatest = SystemdFullEntryRead
)

// Rules returns the version whose rules apply: v, or SystemdLatest when v is unknown.
func (v Systemd) Rules() Systemd {
	if v <= 0 {
		return SystemdLatest
	}
	return v
}

// String is "systemd 252", or "systemd of unknown version, rules of 257 and newer".
func (v Systemd) String() string {
	if v <= 0 {
		return fmt.Sprintf("systemd of unknown version, rules of %d and newer", int(SystemdLatest))
	}
	return fmt.Sprintf("systemd %d", int(v))
}

// URLSafeBase64 reports whether '-' and '_' decode like '+' and '/'.
func (v Systemd) URLSafeBase64() bool { return v.Rules() >= SystemdURLSafeBase64 }

// EntryReadLimit is how many bytes of an entries/11-N/raw file this systemd reads.
func (v Systemd) EntryReadLimit() int {
	if v.Rules() < SystemdFullEntryRead {
		return smbios.EntryReadPage
	}
	return smbios.EntryReadFull
}

// VMMNotify reports whether PID 1 notifies vmm.notify_socket of its readiness.
func (v Systemd) VMMNotify() bool { return v.Rules() >= SystemdVMMNotify }

// ImportsSMBIOS reports whether PID 1 imports credentials from SMBIOS at all.
func (v Systemd) ImportsSMBIOS() bool { return v.Rules() >= SystemdFirstSMBIOS }
