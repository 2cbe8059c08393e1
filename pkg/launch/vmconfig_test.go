package launch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/credlink/credlink/pkg/credential"
)

// --vm-config's own platform.oem_strings share the one Type 11 structure with the credentials:
// they count in the SMBIOS budget, and anything but a non-empty string among them is a
// configuration error, never a panic.
func TestVMConfigOEMStrings(t *testing.T) {
	dir := t.TempDir()
	cfg := func(oem string) string {
		p := filepath.Join(dir, fmt.Sprintf("vm-%d.json", len(oem)))
		os.WriteFile(p, []byte(`{"payload": {"kernel": "/vm/vmlinux"}, "platform": {"oem_strings": `+oem+`}}`), 0o600)
		return p
	}
	strs := func(n, size int) string {
		var s []string
		for i := range n {
			s = append(s, fmt.Sprintf("%q", fmt.Sprintf("%0*d", size, i)))
		}
		return "[" + strings.Join(s, ",") + "]"
	}
	value := credential.NewValue([]byte(strings.Repeat("v", 2000)))
	tests := []struct {
		name string
		oem  string
		err  string // "" = accepted
	}{
		{"a few strings", `["vendor=acme", "rack=7"]`, ""},
		{"too many strings with ours", strs(252, 4), "oem_strings"},
		{"too many bytes with ours", strs(70, 900), "oem_strings"},
		{"a number", `["a", 7]`, "must be non-empty strings"},
		{"null", `[null]`, "must be non-empty strings"},
		{"an object", `[{"x": 1}]`, "must be non-empty strings"},
		{"empty string", `[""]`, "must be non-empty strings"},
		{"NUL inside", `["a\u0000b"]`, "must be non-empty strings"},
		{"not an array", `"x"`, "must be an array"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &Config{VM: "web", Hypervisor: &CloudHypervisor{VMConfig: cfg(tc.oem)}, RuntimeDir: dir,
				Settings: []credential.Credential{{Name: "BIG", Value: value}}}
			var err error
			func() {
				defer func() {
					if r := recover(); r != nil {
						err = fmt.Errorf("panic: %v", r)
					}
				}()
				_, err = c.Plan()
			}()
			checkConfigErr(t, err, tc.err)
		})
	}
}

// The credentials' strings come first in the structure, the operator's after them: a guest
// whose systemd reads only the first 4 KiB must still get the control credentials.
func TestVMConfigOEMStringsAfterOurs(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "vm.json")
	os.WriteFile(p, []byte(`{"payload": {"kernel": "/vm/vmlinux"}, "platform": {"oem_strings": ["`+strings.Repeat("x", 3000)+`"]}}`), 0o600)
	c := &Config{VM: "web", Hypervisor: &CloudHypervisor{VMConfig: p}, RuntimeDir: dir, GuestSystemd: 252,
		Settings: []credential.Credential{{Name: "A", Value: credential.NewValue([]byte("1000"))}}}
	vm, _, cleanup, err := c.setup()
	defer cleanup()
	if err != nil {
		t.Fatal(err)
	}
	oem := vm.(*chVM).config["platform"].(map[string]any)["oem_strings"].([]any)
	if s, _ := oem[0].(string); !strings.HasPrefix(s, credential.PrefixText+"credlink.") && !strings.HasPrefix(s, credential.PrefixBinary+"credlink.") {
		t.Fatalf("first OEM string is not a control credential: %.40q", oem[0])
	}
	if s, _ := oem[len(oem)-1].(string); len(s) != 3000 {
		t.Fatalf("the operator's string is not last: %.40q", s)
	}
}

// TestVMConfigFileRefused: plan refuses a --vm-config that cloud-hypervisor would misread or
// silently ignore part of, with a message naming the place, never a value.
func TestVMConfigFileRefused(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, json, err string // err "" = accepted
	}{
		{"minimal", `{"payload": {"kernel": "/vm/vmlinux"}}`, ""},
		{"empty file", ``, "the file is empty; want a VmConfig JSON object"},
		{"white space only", " \n", "the file is empty"},
		{"an array", `[]`, "want a VmConfig JSON object, not an array"},
		{"a string", `"x"`, "want a VmConfig JSON object, not a string"},
		{"null", `null`, "not null"},
		{"duplicate top-level key", `{"payload": {"kernel": "/a"}, "payload": {"kernel": "/b"}}`, "VmConfig.payload is given twice"},
		{"duplicate nested key", `{"payload": {"kernel": "/a", "kernel": "/b"}}`, "VmConfig.payload.kernel is given twice"},
		{"duplicate key in a list element", `{"payload": {"kernel": "/a"}, "disks": [{"path": "/d"}, {"path": "/e", "path": "/f"}]}`, "VmConfig.disks[1].path is given twice"},
		{"unknown top-level field", `{"payload": {"kernel": "/a"}, "memroy": {"size": 1}}`, "VmConfig.memroy: not a field of VmConfig"},
		{"unknown nested field", `{"payload": {"kernal": "/a"}}`, "VmConfig.payload.kernal: not a field of PayloadConfig"},
		{"set_credential in payload.cmdline", `{"payload": {"kernel": "/a", "cmdline": "console=hvc0 systemd.set_credential=K:v"}}`, "payload.cmdline has a kernel command-line credential"},
		{"set_credential escaped in JSON", `{"payload": {"kernel": "/a", "cmdline": "systemd.set\u005fcredential_binary=K:dg=="}}`, "payload.cmdline has a kernel command-line credential"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, fmt.Sprintf("vm-%d.json", i))
			os.WriteFile(p, []byte(tc.json), 0o600)
			c := &Config{VM: "web", Hypervisor: &CloudHypervisor{VMConfig: p}, RuntimeDir: dir,
				Settings: []credential.Credential{{Name: "A", Value: credential.NewValue([]byte("1"))}}}
			_, err := c.Plan()
			checkConfigErr(t, err, tc.err)
		})
	}
}

// TestVMConfigRefusesHiddenCredentialsAndTrailingData: a credential in --vm-config is refused
// however the JSON spells it (escapes hid it from a byte search, and the string was then
// dropped without a word), and data after the VmConfig object is an error, not ignored.
func TestVMConfigRefusesHiddenCredentialsAndTrailingData(t *testing.T) {
	dir := t.TempDir()
	for i, tc := range []struct {
		name, json, err string
	}{
		{"plain", `{"payload":{"kernel":"/k"},"platform":{"oem_strings":["io.systemd.credential:db=hunter2"]}}`, "already contains systemd credentials"},
		{"escaped dot", `{"payload":{"kernel":"/k"},"platform":{"oem_strings":["io.systemd\u002ecredential:db=hunter2"]}}`, "already contains systemd credentials"},
		{"escaped notify socket", `{"payload":{"kernel":"/k"},"platform":{"oem_strings":["\u0069o.systemd.credential:vmm.notify_socket=vsock:2:8888"]}}`, "already contains systemd credentials"},
		{"binary, elsewhere", `{"payload":{"kernel":"/k","cmdline":"x io.systemd.credential.binary:a=Yg=="}}`, "already contains systemd credentials"},
		{"trailing object", `{"payload":{"kernel":"/k"}} {"payload":{"kernel":"/other"}}`, "data after the VmConfig"},
		{"trailing garbage", `{"payload":{"kernel":"/k"}}x`, "data after the VmConfig"},
		{"trailing whitespace", "{\"payload\":{\"kernel\":\"/k\"}}\n\n", ""},
		{"other strings", `{"payload":{"kernel":"/k"},"platform":{"oem_strings":["io.systemd.other:x"]}}`, ""},
	} {
		p := filepath.Join(dir, fmt.Sprintf("%d.json", i))
		os.WriteFile(p, []byte(tc.json), 0o600)
		_, err := loadVMConfig(p)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
		case err != nil && strings.Contains(err.Error(), "hunter2"):
			t.Errorf("%s: error repeats the value: %v", tc.name, err)
		}
	}
}

// checkConfigErr fails t unless err is nil when want is "", or an ErrConfig whose message
// contains want.
func checkConfigErr(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("refused: %v", err)
		}
		return
	}
	if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want a configuration error mentioning %q", err, want)
	}
}
