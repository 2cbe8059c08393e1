// Package regfile reads small files that must be regular files: credentials, manifests,
// hypervisor configurations. One reader for all of them, because each of them was once a FIFO
// that hung a daemon in open(2), or a symlink followed out of a credentials directory, or a
// file larger than anyone meant.
//
// [Read] reads a name below an os.Root (symlinks refused); [ReadPath] reads an operator-given
// path (symlinks resolved first: NixOS links /etc into the store, secret managers link
// /run/secrets). Both refuse anything but a regular file without blocking, and read at most
// limit bytes whatever the file claims its size is (sysfs files report 4096 or 0).
package regfile
