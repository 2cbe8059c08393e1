package smbios

// Limits of the SMBIOS format and of the readers that matter to credlink. Every other package
// takes them from here.
const (
	// MaxStrings is how many strings one structure can number: its count byte, and the string
	// numbers a structure's fields use, are one byte (DSP0134 6.1.3).
	MaxStrings = 255
	// MaxTable32 is the largest structure table a 2.x (32-bit) entry point can describe: its
	// Structure Table Length field is 16 bits (DSP0134 5.2.1). QEMU also refuses a larger table
	// behind a 2.x entry point, and x86 firmware places the table below 1 MiB.
	MaxTable32 = 65535
	// OEMHeaderSize is the formatted area of a Type 11 structure: type, length, handle, count.
	// systemd accepts an entry only when its length byte is exactly this (src/shared/smbios11.c,
	// read_smbios11_field).
	OEMHeaderSize = 5
	// headerSize is every structure's common header: type, length, handle.
	headerSize = 4

	// EntryReadPage is how much of an entries/11-N/raw file systemd before 257 reads: one
	// read_virtual_file() call returns at most a page (systemd PR 33539 changed this in 257).
	EntryReadPage = 4096
	// EntryReadFull is how much systemd 257 and newer read: the header plus
	// CREDENTIALS_TOTAL_SIZE_MAX (1 MiB), with read_full_file_full() (src/shared/smbios11.c).
	EntryReadFull = OEMHeaderSize + 1<<20

	// MaxRead bounds every file this package reads, whatever a (possibly hostile) entry point
	// announces: a 3.0 table may exceed 64 KiB (its length field is 32 bits), but nothing that
	// carries credentials needs more than the 1 MiB systemd imports plus base64 and headers.
	MaxRead = 4 << 20
)

// StructureSize is the size in bytes of a Type 11 structure holding strs: the 5-byte formatted
// area, each string with its NUL, and the NUL that ends the set (two NULs when there are none).
func StructureSize(strs []string) int {
	n := OEMHeaderSize + 1
	for _, s := range strs {
		n += len(s) + 1
	}
	if len(strs) == 0 {
		n++
	}
	return n
}
