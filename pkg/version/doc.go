// Package version reports the build's version, set at link time or read from the module's build
// information, for `version` subcommands, acknowledgements and the build-info metric.
package version
