package main

import (
	"testing"

	"github.com/credlink/credlink/pkg/testkit"
)

// TestDependencyBoundaries: the launcher that holds every VM's secrets links no metrics stack
// (Prometheus' client and its protobuf dependency are guest-agent's), none of the guest's logic
// and nothing of the tests (go list -deps, as tailscale's tstest/deptest does).
func TestDependencyBoundaries(t *testing.T) {
	const m = testkit.Module
	testkit.CheckDeps(t, m+"/cmd/host-launcher", map[string]string{
		"github.com/prometheus/":      "the launcher exports no metrics; Prometheus' client is guest-agent's",
		"google.golang.org/protobuf/": "pulled in only by Prometheus' client",
		m + "/pkg/metrics":            "guest-agent's metrics",
		m + "/pkg/agent":              "guest-agent's logic",
		m + "/cmd/guest-agent":        "guest-agent is the guest's",
		m + "/pkg/testkit":            "test helpers are for _test.go files",
		"testing":                     "a shipped binary does not link the testing package",
	}, m+"/pkg/launch", m+"/pkg/ack", m+"/pkg/credential")
}
