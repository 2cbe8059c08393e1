package chconfig

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// BenchmarkTranslate: microvm.nix's balloon + vsock command line to a VmConfig. Its peer,
// BenchmarkDecodeVMConfig, decodes the same VmConfig from JSON (the --vm-config path).
func BenchmarkTranslate(b *testing.B) {
	raw, _ := os.ReadFile("testdata/microvm-balloon-vsock.argv")
	argv := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	for b.Loop() {
		if _, err := Translate(argv); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeVMConfig(b *testing.B) {
	raw, _ := os.ReadFile("testdata/microvm-balloon-vsock.json")
	var g struct {
		Config json.RawMessage `json:"config"`
	}
	json.Unmarshal(raw, &g)
	for b.Loop() {
		var m map[string]any
		if err := json.Unmarshal(g.Config, &m); err != nil {
			b.Fatal(err)
		}
	}
}
