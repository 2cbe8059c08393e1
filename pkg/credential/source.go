package credential

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/credlink/credlink/pkg/smbios"
)

// A Source reads the credentials a guest received from one place.
type Source interface {
	// Name identifies the source in reports: one of the Source* names (sourcename.go).
	Name() string
	// Read imports the source's credentials. It returns an error wrapping ErrUnavailable when
	// the source does not exist on this machine, and other errors when it exists but cannot be
	// read; credentials that are individually bad are reported in Set.Problems instead.
	Read() (*Set, error)
}

// ErrUnavailable means a source does not exist here (no SMBIOS tables, no fw_cfg device, no
// credentials directory), as opposed to existing and failing.
var ErrUnavailable = errors.New("source unavailable")

// SMBIOSSource reads SMBIOS Type 11 credentials from a sysfs tree.
type SMBIOSSource struct {
	Sysfs string // sysfs root, "/sys" on a real guest
	// FromTable decodes the whole table (tables/DMI) instead of the entries/11-N files systemd
	// reads. Both must agree on a real guest; the table is readable where entries are not
	// (dmi_sysfs not loaded).
	FromTable bool
}

func (SMBIOSSource) Name() string { return SourceSMBIOS }

func (s SMBIOSSource) Read() (*Set, error) {
	var strs []string
	var err error
	if s.FromTable {
		strs, _, err = smbios.ReadTable(s.Sysfs)
	} else {
		strs, err = smbios.ReadEntries(s.Sysfs)
	}
	if errors.Is(err, smbios.ErrNoTable) {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if err != nil {
		return nil, err
	}
	return ParseOEMStrings(strs), nil
}

// FwCfgDir is where QEMU's -fw_cfg name=opt/io.systemd.credentials/NAME appears, relative to sysfs.
const FwCfgDir = "firmware/qemu_fw_cfg/by_name/opt/io.systemd.credentials"

// FwCfgSource reads credentials QEMU passed with -fw_cfg name=opt/io.systemd.credentials/NAME
// (the qemu_fw_cfg module must be loaded). Each credential is a directory NAME holding a raw file.
type FwCfgSource struct {
	Sysfs string
}

func (FwCfgSource) Name() string { return SourceFwCfg }

func (s FwCfgSource) Read() (*Set, error) {
	return readDir(filepath.Join(s.Sysfs, FwCfgDir), SourceFwCfg, "raw")
}

// DirSource reads a systemd credentials directory: $CREDENTIALS_DIRECTORY of a service, or
// /run/credentials/@system for the system credentials PID 1 imported.
type DirSource struct {
	Dir string
}

func (DirSource) Name() string { return SourceCredentials }

func (s DirSource) Read() (*Set, error) { return readDir(s.Dir, SourceCredentials, "") }

// readDir imports every entry of dir as a credential named after it. With leaf == "" each entry
// must be a regular file holding the value; otherwise a directory holding the value in leaf.
// All access goes through os.Root, so no name or symlink in the tree reaches outside dir, and
// symlinks are refused outright: a credentials directory never legitimately holds one.
func readDir(dir, source, leaf string) (*Set, error) {
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
	set := &Set{}
	for _, e := range entries {
		name := e.Name()
		if err := ValidName(name); err != nil {
			_ = set.skip(name, source, err)
			continue
		}
		rel := name
		if leaf != "" {
			rel = name + "/" + leaf
		}
		value, err := ReadFile(root, rel)
		if err != nil {
			_ = set.skip(name, source, err)
			continue
		}
		_ = set.Add(Credential{Name: name, Value: NewValue(value), Source: source})
	}
	return set, nil
}

// Read reads every source and merges them in the order given (earlier wins), skipping sources
// that are unavailable. It fails only when a source exists but cannot be read, or when none is
// available.
func Read(sources ...Source) (*Set, []string, error) {
	var sets []*Set
	var used []string
	for _, src := range sources {
		s, err := src.Read()
		if errors.Is(err, ErrUnavailable) {
			continue
		}
		if err != nil {
			return nil, used, fmt.Errorf("%s: %w", src.Name(), err)
		}
		sets = append(sets, s)
		used = append(used, src.Name())
	}
	if len(sets) == 0 {
		return nil, nil, fmt.Errorf("%w: none of the %d credential sources exists", ErrUnavailable, len(sources))
	}
	return Merge(sets...), used, nil
}
