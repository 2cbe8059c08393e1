package main

import (
	"testing"

	"github.com/credlink/credlink/pkg/testkit"
)

// TestDependencyBoundaries: what runs in every guest links nothing of the host side and nothing
// of the tests (go list -deps, as tailscale's tstest/deptest does).
func TestDependencyBoundaries(t *testing.T) {
	const m = testkit.Module
	testkit.CheckDeps(t, m+"/cmd/guest-agent", map[string]string{
		m + "/pkg/launch":        "the launcher (hypervisors, host credentials) belongs to host-launcher",
		m + "/cmd/host-launcher": "host-launcher is the host's",
		m + "/pkg/testkit":       "test helpers are for _test.go files",
		"testing":                "a shipped binary does not link the testing package",
	}, m+"/pkg/agent", m+"/pkg/ack", m+"/pkg/credential")
}
