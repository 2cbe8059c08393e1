package version

import "runtime/debug"

// Version is set with -ldflags '-X github.com/credlink/credlink/pkg/version.Version=v1.2.3'.
var Version = ""

// String returns the version: the linker-set one, else the module version, else "devel".
func String() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
