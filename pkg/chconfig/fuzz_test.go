package chconfig

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzTranslate feeds operator input (a command line, one argument per line) through the whole
// translation: it must never panic, and whatever it accepts must encode as JSON.
func FuzzTranslate(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.argv")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(string(b))
	}
	for _, s := range []string{"--kernel\n/k\n--platform\noem_strings=[\"a,b\",c]", "--kernel\n/k\n--net\nfd=[3-5],num_queues=6",
		"--kernel=/k\n--disk=path=\"a\"\"b\"", "-vvv\n--api-socket\npath=/x,fd=", "--kernel\n/k\n--cpus\ntopology=1:2:3:4,max=+3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tr, err := Translate(strings.Split(s, "\n"))
		if err != nil {
			return
		}
		if _, err := json.Marshal(tr.Config); err != nil {
			t.Fatalf("accepted but cannot encode: %v", err)
		}
	})
}

// FuzzOptionString fuzzes one key=value option string against every option parser.
func FuzzOptionString(f *testing.F) {
	for _, s := range []string{"size=128M,mergeable=on,topology=[[1,2],[3,4]]", `cmdline="console=ttyS0,9600n8"`, `topology=["@""b"@[1,2]]`,
		"path=/a,readonly=on,num_queues=4", "mac=de:ad:be:ef:12:34,fd=[3,7],num_queues=4", "oem_strings=[a,b],uuid=x", "tag=a,socket=/s", "file=", "[", `"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, opt := range []string{"--cpus", "--memory", "--disk", "--net", "--rng", "--balloon", "--fs", "--console", "--serial", "--device", "--vsock", "--platform", "--api-socket"} {
			_, _ = Translate([]string{"--kernel", "/k", opt, s})
		}
	})
}
