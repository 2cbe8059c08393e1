package sources

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/credlink/credlink/pkg/credential"
	"github.com/credlink/credlink/pkg/smbios"
)

// A Source reads the credentials a guest received from one place.
type Source interface {
	// Name identifies the source in reports: one of the Source* names (sourcename.go).
	Name() string
	// Read imports the source's credentials. It returns an error wrapping ErrUnavailable when
	// the source does not exist on this machine, and other errors when it exists but cannot be
	// read; credentials that are individually bad are reported in credential.Set.Problems instead.
	Read() (*credential.Set, error)
}

// ErrUnavailable means a source does not exist here (no SMBIOS tables, dmi_sysfs not loaded, no
// fw_cfg device, no credentials directory), as opposed to existing and failing.
var ErrUnavailable = errors.New("source unavailable")

// State is how reading one source went.
type State string

const (
	OK State = "ok"
	// Partial: the source was read, but part of it was not imported as a whole; the
	// credential.Set's Warnings say what (an entry systemd cuts at its read limit or stops at).
	Partial     State = "partial"
	Unavailable State = "unavailable" // does not exist here (ErrUnavailable)
	Failed      State = "error"       // exists but cannot be read
)

// States lists every state, for metrics that export one series per state.
var States = []State{OK, Partial, Unavailable, Failed}

// Report is the outcome of reading one source. Detail never holds a value.
type Report struct {
	Name   string
	State  State
	Detail string // the error, or the credential.Set's warnings joined; empty when ok
}

// SMBIOS reads SMBIOS Type 11 credentials from a sysfs tree under the rules of the
// systemd version it is told.
type SMBIOS struct {
	Sysfs string // sysfs root, "/sys" on a real guest
	// FromTable decodes the whole table (tables/DMI) the way Linux does instead of reading the
	// entries/11-N files systemd reads; the same systemd rules then apply to the Type 11
	// structures found. Both must agree on a real guest.
	FromTable bool
	Systemd   credential.Systemd
}

func (SMBIOS) Name() string { return credential.SourceSMBIOS }

// Read imports the Type 11 entries as systemd s.Systemd does (see smbios.Import and
// credential.ParseOEMStrings). An entry systemd would cut or stop at becomes a Warning of the returned
// credential.Set, with the credentials before it imported; only a tree without SMBIOS (ErrUnavailable) or
// one that cannot be read at all is an error.
func (s SMBIOS) Read() (*credential.Set, error) {
	if !s.Systemd.ImportsSMBIOS() {
		return nil, fmt.Errorf("%w: %s does not import credentials from SMBIOS (%d and newer do)", ErrUnavailable, s.Systemd, int(credential.SystemdFirstSMBIOS))
	}
	var raws [][]byte
	var info smbios.TableInfo
	var err error
	where := "entries/11-"
	if s.FromTable {
		raws, info, err = smbios.ReadTable(s.Sysfs)
		where = "Type 11 structure "
	} else {
		raws, err = smbios.ReadEntries(s.Sysfs)
	}
	if errors.Is(err, smbios.ErrNoTable) || errors.Is(err, smbios.ErrNoDMISysfs) {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if err != nil && len(raws) == 0 {
		return nil, err
	}
	im := smbios.Import(raws, s.Systemd.EntryReadLimit())
	set := credential.ParseOEMStrings(im.Strings, s.Systemd)
	if err != nil {
		set.Warnings = append(set.Warnings, fmt.Sprintf("%v; systemd stops its walk there too, keeping the %d entries before it", err, len(raws)))
	}
	if im.Stop != nil {
		set.Warnings = append(set.Warnings, fmt.Sprintf("%v: systemd stops at this entry; it and later ones are not imported", im.Stop))
	}
	for _, c := range im.Cut {
		what := "the strings after its first " + fmt.Sprint(c.Limit) + " bytes are lost"
		why := fmt.Sprintf("%s reads only the first %d bytes of %s%d", s.Systemd, c.Limit, where, c.Entry)
		if name, _, _, ok := credential.OEMStringInfo(c.LastString); ok {
			what = fmt.Sprintf("credential %s crosses that boundary and is imported cut short; later strings in it are lost", credential.DisplayName(name))
			set.MarkCut(name, why)
			// Cut base64 usually no longer decodes: say why it was skipped.
			for i, p := range set.Problems {
				if p.Name == name && p.Source == credential.SourceSMBIOS {
					set.Problems[i].Reason = fmt.Errorf("%w; cut short, %s", p.Reason, why)
				}
			}
		}
		for _, lost := range c.Lost {
			if name, _, _, ok := credential.OEMStringInfo(lost); ok {
				_ = set.Skip(name, credential.SourceSMBIOS, fmt.Errorf("%w: it starts beyond the first %d bytes of %s%d, all that %s reads", credential.ErrCutOff, c.Limit, where, c.Entry, s.Systemd))
			}
		}
		size := fmt.Sprint(c.Size)
		if c.Size > smbios.MaxRead {
			size = fmt.Sprintf("more than %d", smbios.MaxRead)
		}
		set.Warnings = append(set.Warnings, fmt.Sprintf("%s%d has %s bytes but %s reads only the first %d: %s",
			where, c.Entry, size, s.Systemd, c.Limit, what))
	}
	if info.Stopped != "" {
		set.Warnings = append(set.Warnings, "table walk stopped early, as Linux does: "+info.Stopped)
	}
	return set, nil
}

// FwCfgDir is where QEMU's -fw_cfg name=opt/io.systemd.credentials/NAME appears, relative to sysfs.
const FwCfgDir = "firmware/qemu_fw_cfg/by_name/opt/io.systemd.credentials"

// FwCfg reads credentials QEMU passed with -fw_cfg name=opt/io.systemd.credentials/NAME
// (the qemu_fw_cfg module must be loaded). Each credential is a directory NAME holding a raw file.
type FwCfg struct {
	Sysfs string
}

func (FwCfg) Name() string { return credential.SourceFwCfg }

func (s FwCfg) Read() (*credential.Set, error) {
	return readDir(filepath.Join(s.Sysfs, FwCfgDir), credential.SourceFwCfg, "raw")
}

// Dir reads a systemd credentials directory: $CREDENTIALS_DIRECTORY of a service, or
// /run/credentials/@system for the system credentials PID 1 imported.
type Dir struct {
	Dir string
}

func (Dir) Name() string { return credential.SourceCredentials }

func (s Dir) Read() (*credential.Set, error) { return readDir(s.Dir, credential.SourceCredentials, "") }

// readDir imports every entry of dir as a credential named after it. With leaf == "" each entry
// must be a regular file holding the value; otherwise a directory holding the value in leaf.
// All access goes through os.Root, so no name or symlink in the tree reaches outside dir, and
// symlinks are refused outright: a credentials directory never legitimately holds one.
func readDir(dir, source, leaf string) (*credential.Set, error) {
	root, err := os.OpenRoot(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s does not exist", ErrUnavailable, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s source: %w", source, err)
	}
	defer root.Close()
	d, err := root.Open(".")
	if err != nil {
		return nil, fmt.Errorf("open %s source: %w", source, err)
	}
	entries, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	// Sorted like systemd's readdir-then-sort, so that the import order, and with it which
	// credential the 1 MiB total cuts off, does not depend on the file system.
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	set := &credential.Set{}
	var skipped []string // display names, never raw: a name may hold any byte but '/' and NUL
	for _, e := range entries {
		name := e.Name()
		if err := credential.ValidName(name); err != nil {
			_ = set.Skip(name, source, err)
			skipped = append(skipped, credential.DisplayName(name)+" (invalid name)")
			continue
		}
		rel := name
		if leaf != "" {
			rel = name + "/" + leaf
		}
		value, err := credential.ReadFile(root, rel)
		if err != nil {
			_ = set.Skip(name, source, err)
			skipped = append(skipped, fmt.Sprintf("%s (%v)", credential.DisplayName(name), err))
			continue
		}
		_ = set.Add(credential.Credential{Name: name, Value: credential.NewValue(value), Source: source})
	}
	// An entry nobody can use is a fault of whoever filled the directory, listed in the
	// manifest or not: the source is then partial (visible in check, STATUS= and the source
	// metric), and Problems say why each was skipped.
	if len(skipped) > 0 {
		set.Warnings = append(set.Warnings, skippedWarning(skipped))
	}
	return set, nil
}

// maxSkippedNames bounds how many skipped entries a warning names; the rest are counted.
const maxSkippedNames = 5

// skippedWarning is `2 entries not imported: "BIG" (credential larger than 1 MiB …), "LINK" (…)`.
func skippedWarning(names []string) string {
	shown := names
	more := ""
	if len(shown) > maxSkippedNames {
		shown, more = shown[:maxSkippedNames], fmt.Sprintf(" and %d more", len(names)-maxSkippedNames)
	}
	return fmt.Sprintf("%d entries not imported: %s%s", len(names), strings.Join(shown, ", "), more)
}

// Read reads every source and merges the readable ones in the order given (earlier wins), as
// systemd's import does (fw_cfg, then SMBIOS). One source failing never hides the others: each
// gets a Report. It fails only when no source could be read; the error then wraps
// ErrUnavailable when none exists at all.
func Read(sources ...Source) (*credential.Set, []Report, error) {
	var sets []*credential.Set
	var reports []Report
	var firstErr error
	for _, src := range sources {
		s, r, err := ReadSource(src)
		switch {
		case r.State == Unavailable:
		case err != nil:
			if firstErr == nil {
				firstErr = err
			}
		default:
			sets = append(sets, s)
		}
		reports = append(reports, r)
	}
	if len(sets) == 0 {
		if firstErr != nil {
			return nil, reports, firstErr
		}
		return nil, reports, fmt.Errorf("%w: none of the %d credential sources exists", ErrUnavailable, len(sources))
	}
	return credential.Merge(sets...), reports, nil
}

// ReadSource reads one source and reports how it went: ok, partial (read, with the credential.Set's
// warnings as detail), unavailable or error. The error is prefixed with the source's name.
func ReadSource(src Source) (*credential.Set, Report, error) {
	s, err := src.Read()
	r := Report{Name: src.Name(), State: OK}
	switch {
	case errors.Is(err, ErrUnavailable):
		r.State, r.Detail = Unavailable, err.Error()
	case err != nil:
		r.State, r.Detail = Failed, err.Error()
	case len(s.Warnings) > 0:
		r.State, r.Detail = Partial, strings.Join(s.Warnings, "; ")
	}
	if err != nil {
		return nil, r, fmt.Errorf("%s: %w", src.Name(), err)
	}
	return s, r, nil
}

// Used returns the names of the sources that were read (ok or partial).
func Used(reports []Report) []string {
	var out []string
	for _, r := range reports {
		if r.State == OK || r.State == Partial {
			out = append(out, r.Name)
		}
	}
	return out
}
