package smbios

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// EntryPointType selects the SMBIOS entry point format.
type EntryPointType int

const (
	EntryPoint32 EntryPointType = iota // "_SM_" 2.x, 31 bytes, table ≤ 65535 bytes
	EntryPoint64                       // "_SM3_" 3.0, 24 bytes
)

func (t EntryPointType) String() string {
	if t == EntryPoint64 {
		return "64-bit (3.0)"
	}
	return "32-bit (2.8)"
}

// Errors of Build.
var (
	ErrTooManyStrings = errors.New("more than 255 strings in one structure")
	ErrBadString      = errors.New("invalid OEM string")
)

// Table is a complete SMBIOS table image.
type Table struct {
	EntryPoint []byte   // entry point as sysfs shows it (table address 0)
	Data       []byte   // the structure table (sysfs tables/DMI)
	Entries    [][]byte // each Type 11 structure as sysfs shows it (entries/11-N/raw)
	Type       EntryPointType
}

// dumpTableOffset is where dmidecode's dump format puts the table (dmidecode.c: 32).
const dumpTableOffset = 32

// FirstOEMHandle is the handle of the first Type 11 structure credlink builds; the next ones
// count up from it. QEMU numbers its own structures by type (Type 4 from 0x400, Type 16 at
// 0x1000, …, hw/smbios/smbios.c) and keeps a blob's handle as it is, so 0x0b00..0x0bff is free.
const FirstOEMHandle = 0x0b00

// Structure returns one complete Type 11 structure holding strs, exactly [StructureSize] bytes:
// what QEMU's -smbios file= loads and what Linux exposes as entries/11-N/raw. It fails when there
// are more than [MaxStrings] strings or a string is empty or contains NUL (NUL ends a string and
// an empty one ends the set).
func Structure(strs []string, handle uint16) ([]byte, error) {
	if len(strs) > MaxStrings {
		return nil, fmt.Errorf("%w (%d)", ErrTooManyStrings, len(strs))
	}
	s := make([]byte, OEMHeaderSize, StructureSize(strs))
	s[0], s[1], s[4] = TypeOEMStrings, OEMHeaderSize, byte(len(strs))
	binary.LittleEndian.PutUint16(s[2:], handle)
	for si, str := range strs {
		if str == "" {
			return nil, fmt.Errorf("string %d: %w: empty (an empty string would end the set)", si+1, ErrBadString)
		}
		if strings.IndexByte(str, 0) >= 0 {
			return nil, fmt.Errorf("string %d: %w: contains NUL", si+1, ErrBadString)
		}
		s = append(s, str...)
		s = append(s, 0)
	}
	if len(strs) == 0 {
		s = append(s, 0)
	}
	return append(s, 0), nil
}

// Build lays out one Type 11 structure per element of groups (in order, handles
// FirstOEMHandle, FirstOEMHandle+1, …) followed by an end-of-table structure, behind an entry
// point of the given type. It fails as [Structure] does, or when the table would exceed
// [MaxTable32] bytes behind a 2.x entry point or [MaxRead] behind a 3.0 one.
func Build(groups [][]string, ept EntryPointType) (*Table, error) {
	limit := MaxTable32
	if ept == EntryPoint64 {
		limit = MaxRead
	}
	t := &Table{Type: ept}
	maxStruct := 0
	for gi, g := range groups {
		s, err := Structure(g, uint16(FirstOEMHandle+gi))
		if err != nil {
			return nil, fmt.Errorf("structure %d: %w", gi, err)
		}
		maxStruct = max(maxStruct, len(s))
		t.Entries = append(t.Entries, s)
		t.Data = append(t.Data, s...)
		if len(t.Data) > limit {
			return nil, fmt.Errorf("structure %d: %w: table exceeds %d bytes", gi, ErrTooLarge, limit)
		}
	}
	end := []byte{TypeEndOfTable, 4, 0x00, 0x7f, 0, 0}
	t.Data = append(t.Data, end...)
	if len(t.Data) > limit {
		return nil, fmt.Errorf("end-of-table: %w: table exceeds %d bytes", ErrTooLarge, limit)
	}
	nStruct := len(groups) + 1
	switch ept {
	case EntryPoint32:
		t.EntryPoint = entryPoint32(len(t.Data), nStruct, max(maxStruct, len(end)), 0)
	case EntryPoint64:
		t.EntryPoint = entryPoint64(len(t.Data), 0)
	default:
		return nil, fmt.Errorf("unknown entry point type %d", ept)
	}
	return t, nil
}

// WriteTree builds a table of groups behind a 3.0 entry point (the one without a 64 KiB limit)
// and writes it under root in the sysfs layout: the encode → table → sysfs pipeline of local
// mode and of every test fixture.
func WriteTree(root string, groups [][]string) error {
	t, err := Build(groups, EntryPoint64)
	if err != nil {
		return err
	}
	return t.WriteSysfs(root)
}

// entryPoint32 builds an SMBIOS 2.8 entry point (DSP0134 5.2.1).
func entryPoint32(tableLen, nStruct, maxStruct int, addr uint32) []byte {
	b := make([]byte, 0x1f)
	copy(b[0:], "_SM_")
	b[5] = 0x1f // length
	b[6], b[7] = 2, 8
	binary.LittleEndian.PutUint16(b[8:], uint16(maxStruct))
	copy(b[16:], "_DMI_")
	binary.LittleEndian.PutUint16(b[22:], uint16(tableLen))
	binary.LittleEndian.PutUint32(b[24:], addr)
	binary.LittleEndian.PutUint16(b[28:], uint16(nStruct))
	b[30] = 0x28 // BCD revision 2.8
	b[21] = -sum(b[16:31])
	b[4] = -sum(b)
	return b
}

// entryPoint64 builds an SMBIOS 3.0 entry point (DSP0134 5.2.2).
func entryPoint64(tableLen int, addr uint64) []byte {
	b := make([]byte, 0x18)
	copy(b[0:], "_SM3_")
	b[6] = 0x18
	b[7], b[8], b[9] = 3, 0, 0
	b[10] = 1 // entry point revision 3.0
	binary.LittleEndian.PutUint32(b[12:], uint32(tableLen))
	binary.LittleEndian.PutUint64(b[16:], addr)
	b[5] = -sum(b)
	return b
}

func sum(b []byte) byte {
	var s byte
	for _, c := range b {
		s += c
	}
	return s
}

// DumpBin returns the image in dmidecode's --dump-bin / --from-dump format: the entry point at
// offset 0, pointing at the table at offset 32.
func (t *Table) DumpBin() []byte {
	var ep []byte
	if t.Type == EntryPoint64 {
		ep = entryPoint64(len(t.Data), dumpTableOffset)
	} else {
		ep = entryPoint32(len(t.Data), len(t.Entries)+1, int(binary.LittleEndian.Uint16(t.EntryPoint[8:])), dumpTableOffset)
	}
	out := make([]byte, dumpTableOffset, dumpTableOffset+len(t.Data))
	copy(out, ep)
	return append(out, t.Data...)
}

// WriteSysfs writes the image under root in the layout Linux uses below /sys:
// firmware/dmi/tables/{smbios_entry_point,DMI} and firmware/dmi/entries/11-N/{raw,type,length,handle}.
// Directories are created 0700 and files 0400, since the tree holds credentials.
func (t *Table) WriteSysfs(root string) error {
	write := func(rel string, b []byte) error {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		return os.WriteFile(p, b, 0o400)
	}
	if err := write(EntryPointFile, t.EntryPoint); err != nil {
		return err
	}
	if err := write(TableFile, t.Data); err != nil {
		return err
	}
	for i, e := range t.Entries {
		dir := filepath.Join(EntriesDir, "11-"+strconv.Itoa(i))
		files := map[string][]byte{
			"raw":    e,
			"type":   []byte("11\n"),
			"length": []byte(strconv.Itoa(int(e[1])) + "\n"),
			"handle": []byte(strconv.Itoa(int(binary.LittleEndian.Uint16(e[2:]))) + "\n"),
		}
		for name, b := range files {
			if err := write(filepath.Join(dir, name), b); err != nil {
				return err
			}
		}
	}
	return nil
}
