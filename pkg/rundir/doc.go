// Package rundir provides credlink's private per-run directories (sockets, the local mode's
// generated SMBIOS tree, the demo's generated credentials): created 0700, removed when the run
// ends, and — because a process killed with SIGKILL removes nothing — removed by the next run
// in the same base directory once the process that held them is gone.
//
// Each directory holds a lock file, ".credlink-lock", on which its creator keeps an exclusive
// flock(2) for its lifetime. The kernel drops the lock when the process dies, however it dies,
// so Create sweeps the base directory first: every "credlink-*" directory of the same user
// whose lock can be taken is a leftover and is removed. Directories without the lock file
// (another program's, or an older credlink's still running) are never touched.
package rundir
