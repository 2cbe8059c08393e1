package launch

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/credlink/credlink/pkg/credential"
	"github.com/credlink/credlink/pkg/smbios"
)

// How QEMU receives the OEM strings (--smbios-delivery).
const (
	// SMBIOSFile: host-launcher builds every Type 11 structure itself and hands each to QEMU as
	// a sealed memfd, -smbios file=/dev/fd/N. QEMU copies such a blob into its table verbatim,
	// handle included, ahead of its own structures (hw/smbios/smbios.c, smbios_entry_add; SeaBIOS
	// keeps its Type 0 first), counted in a 2.x entry point (fixtures ep32-blob, ep64-blob; QEMU
	// 9.0 and later keep blobs apart in usr_blobs and still count one structure per file), so
	// the strings are exactly the bytes we wrote on every QEMU version, and any number of
	// structures (more than 255 credentials) can be passed. Immune to the path= overrun.
	SMBIOSFile = "file"
	// SMBIOSPath: one inherited pipe per string, -smbios type=11,path=/dev/fd/N; QEMU merges the
	// strings into one structure of at most 255. QEMU 6.1 until the 2025 fix (qemu issue 2879)
	// does not NUL-terminate what it reads there: strings can gain trailing heap bytes.
	SMBIOSPath = "path"
)

// smbiosDelivery is what QEMU needs to receive the OEM strings. Its arguments and plan are
// known before anything is opened, so a plan opens nothing.
type smbiosDelivery struct {
	args []string // added to QEMU's argv; never a value
	plan []string
	// open makes the files QEMU inherits as fds firstFD, firstFD+1, …; the caller closes them
	// once QEMU has started and then calls afterStart (which feeds pipes; nil for memfds).
	open func() (files []*os.File, afterStart func(), err error)
}

// qemuSMBIOS prepares the delivery of groups (one element per Type 11 structure, from
// credential.Encode) by method, for fds numbered from firstFD in the child. It is the one place
// that decides how OEM strings reach QEMU, so that tests can run both ways.
func qemuSMBIOS(method string, groups [][]string, firstFD int) (*smbiosDelivery, error) {
	d := &smbiosDelivery{}
	switch method {
	case SMBIOSFile, "":
		for i, g := range groups {
			fd := firstFD + i
			d.args = append(d.args, "-smbios", fmt.Sprintf("file=/dev/fd/%d", fd))
			d.plan = append(d.plan, fmt.Sprintf("  fd %d (sealed memfd, -smbios file=) → Type 11 structure %d, handle %#04x, %d strings, %d bytes",
				fd, i, smbios.FirstOEMHandle+i, len(g), smbios.StructureSize(g)))
			for _, str := range g {
				d.plan = append(d.plan, "    "+credential.RedactOEMString(str))
			}
		}
		d.open = func() ([]*os.File, func(), error) {
			var files []*os.File
			for i, g := range groups {
				s, err := smbios.Structure(g, uint16(smbios.FirstOEMHandle+i))
				if err != nil {
					closeAll(files)
					return nil, nil, fmt.Errorf("type 11 structure %d: %w", i, err)
				}
				f, err := sealedMemfd(fmt.Sprintf("credlink-smbios-11-%d", i), s)
				clear(s)
				if err != nil {
					closeAll(files)
					return nil, nil, err
				}
				files = append(files, f)
			}
			return files, nil, nil
		}
		return d, nil
	case SMBIOSPath:
		if len(groups) > 1 {
			return nil, configErr("-smbios type=11,path= merges every string into one Type 11 structure; %d structures need --smbios-delivery file", len(groups))
		}
		strs := credential.Flatten(groups)
		for i, str := range strs {
			d.args = append(d.args, "-smbios", fmt.Sprintf("type=11,path=/dev/fd/%d", firstFD+i))
			d.plan = append(d.plan, fmt.Sprintf("  fd %d (pipe, -smbios type=11,path=) → %s", firstFD+i, credential.RedactOEMString(str)))
		}
		d.open = func() ([]*os.File, func(), error) {
			var readers, writers []*os.File
			for range strs {
				r, w, err := os.Pipe()
				if err != nil {
					closeAll(readers)
					closeAll(writers)
					return nil, nil, fmt.Errorf("pipe: %w", err)
				}
				readers, writers = append(readers, r), append(writers, w)
			}
			// QEMU reads each path= once at start-up; a pipe holds 64 KiB, so write from
			// goroutines and close each writer so QEMU sees the end of its string. Without a
			// QEMU (start failed) the writes fail at once on the closed read ends.
			return readers, func() {
				for i, w := range writers {
					go func() {
						_, _ = w.Write([]byte(strs[i]))
						w.Close()
					}()
				}
			}, nil
		}
		return d, nil
	default:
		return nil, configErr("--smbios-delivery must be %s or %s, not %q", SMBIOSFile, SMBIOSPath, method)
	}
}

// sealedMemfd returns a memfd holding b, sealed against any change, positioned at 0. QEMU sizes
// a -smbios file= before reading it (get_image_size, then load_image), so it must be seekable
// (a pipe is not) and must not change in between (the seals guarantee it). Nothing touches disk;
// the name shows in /proc/PID/fd as "/memfd:NAME (deleted)" and carries no value.
func sealedMemfd(name string, b []byte) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "memfd:"+name)
	if _, err := f.Write(b); err != nil {
		f.Close()
		return nil, fmt.Errorf("write memfd: %w", err)
	}
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE|unix.F_SEAL_SEAL); err != nil {
		f.Close()
		return nil, fmt.Errorf("seal memfd: %w", err)
	}
	if _, err := f.Seek(0, 0); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// describeStructures is "2 Type 11 structures (255+45 strings, 12034+2113 bytes)".
func describeStructures(groups [][]string) string {
	var counts, sizes []string
	for _, g := range groups {
		counts = append(counts, fmt.Sprint(len(g)))
		sizes = append(sizes, fmt.Sprint(smbios.StructureSize(g)))
	}
	noun := "structure"
	if len(groups) != 1 {
		noun = "structures"
	}
	return fmt.Sprintf("%d Type 11 %s (%s strings, %s bytes)", len(groups), noun, strings.Join(counts, "+"), strings.Join(sizes, "+"))
}
