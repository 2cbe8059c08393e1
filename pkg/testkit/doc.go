// Package testkit is what credlink's tests share: the module's commands built once per test
// process with the test binary's own -race setting (Bin), a leak check for secret bytes
// (Secrets), a goroutine-safe buffer that can be waited on (SyncBuffer), helpers to run a
// command or a daemon under a deadline (Run, Start), a free TCP port (FreePort) and a sysfs
// tree carrying an SMBIOS table of credentials (SMBIOSSysfs).
//
// It is for _test.go files only; a dependency test (TestDependencyBoundaries in cmd/...) keeps
// it out of the shipped binaries.
package testkit
