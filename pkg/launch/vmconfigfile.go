package launch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/credlink/credlink/pkg/chconfig"
)

// decodeVMConfig reads a --vm-config file's bytes as a cloud-hypervisor VmConfig, refusing what
// would otherwise pass silently: an empty file, a JSON value that is not an object, a key given
// twice in one object (encoding/json keeps the last, and the operator meant one of them), and a
// field cloud-hypervisor's OpenAPI schema does not name (the real VMM ignores it, so a typo such
// as "kernal" would boot without it; chconfig.CheckSchema). Numbers stay json.Number so that
// they reach vm.create exactly as written. Errors say what is wrong, never a value.
func decodeVMConfig(b []byte) (map[string]any, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, errors.New("the file is empty; want a VmConfig JSON object")
	}
	if err := checkJSONObjectKeys(b); err != nil {
		return nil, err
	}
	var cfg map[string]any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&cfg); err != nil {
		return nil, err
	}
	// A second value (a template's duplicate, a half-written file) would be ignored silently.
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("data after the VmConfig object")
	}
	if cfg == nil {
		return nil, errors.New("want a VmConfig JSON object, not null")
	}
	if err := chconfig.CheckSchema("VmConfig", cfg); err != nil {
		return nil, fmt.Errorf("%w (cloud-hypervisor would ignore it)", err)
	}
	if pl, ok := cfg["payload"].(map[string]any); ok {
		if s, ok := pl["cmdline"].(string); ok && kernelCredential(s) {
			return nil, errors.New("payload.cmdline has a kernel command-line credential (systemd.set_credential=): it would sit in the guest's /proc/cmdline; pass it with --credential (secret) or --set (plain value) instead")
		}
	}
	return cfg, nil
}

// checkJSONObjectKeys walks the first JSON value of b: it must be an object, and no object in
// it may have a key twice. Syntax errors are left to the decoder, which words them better.
func checkJSONObjectKeys(b []byte) error {
	d := json.NewDecoder(bytes.NewReader(b))
	tok, err := d.Token()
	if err != nil {
		return nil
	}
	if tok != json.Delim('{') {
		return fmt.Errorf("want a VmConfig JSON object, not %s", jsonKind(tok))
	}
	return walkJSONObject(d, "VmConfig")
}

// walkJSONObject reads an object's members after its '{', through its '}'.
func walkJSONObject(d *json.Decoder, path string) error {
	seen := map[string]bool{}
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return nil
		}
		key, _ := tok.(string)
		if seen[key] {
			return fmt.Errorf("%s.%s is given twice (JSON keeps only the last)", path, key)
		}
		seen[key] = true
		if err := walkJSONValue(d, path+"."+key); err != nil {
			return err
		}
	}
	_, _ = d.Token() // '}'
	return nil
}

// walkJSONValue reads one value, looking into objects and arrays.
func walkJSONValue(d *json.Decoder, path string) error {
	tok, err := d.Token()
	if err != nil {
		return nil
	}
	switch tok {
	case json.Delim('{'):
		return walkJSONObject(d, path)
	case json.Delim('['):
		for i := 0; d.More(); i++ {
			if err := walkJSONValue(d, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		_, _ = d.Token() // ']'
	}
	return nil
}

// jsonKind names a JSON value by its first token.
func jsonKind(tok json.Token) string {
	switch tok.(type) {
	case json.Delim:
		return "an array"
	case string:
		return "a string"
	case float64, json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return "that"
}
