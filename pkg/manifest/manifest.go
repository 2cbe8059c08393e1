package manifest

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/credlink/credlink/pkg/credential"
	"github.com/credlink/credlink/pkg/regfile"
)

// DefaultPath is where guest-agent looks for its manifest.
const DefaultPath = "/etc/credlink/manifest.json"

// Policy says what to do with credentials that arrive but are not listed.
type Policy string

const (
	Ignore Policy = "ignore"
	Warn   Policy = "warn"
	Fail   Policy = "fail"
)

// Rule is what one credential must satisfy. A zero Rule accepts any value.
type Rule struct {
	Bytes    *int   // exact length
	MinBytes *int   // inclusive
	MaxBytes *int   // inclusive
	Optional bool   // absence is not a failure
	Secret   bool   // default true: the value is never shown
	SHA256   []byte // expected digest of the value, 32 bytes
}

// Manifest is a parsed manifest. Names keeps the credentials in file order.
type Manifest struct {
	Names       []string
	Credentials map[string]Rule
	Unexpected  Policy
}

// ErrInvalid is wrapped by every error about the manifest's content.
var ErrInvalid = errors.New("invalid manifest")

// Load reads and parses a manifest file; errors start with the path.
func Load(path string) (*Manifest, error) {
	b, err := regfile.ReadPath(path, maxManifest) // NixOS links /etc into the store
	if err != nil {
		return nil, fmt.Errorf("manifest: %s: %w", path, err)
	}
	m, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Parse parses manifest JSON strictly.
func Parse(b []byte) (*Manifest, error) {
	p := &parser{src: b, d: json.NewDecoder(bytes.NewReader(b))}
	p.d.UseNumber()
	m := &Manifest{Credentials: map[string]Rule{}, Unexpected: Warn}
	seenCreds := false
	err := p.object("", func(key, path string) error {
		switch key {
		case "credentials":
			seenCreds = true
			return p.object(path, func(name, cpath string) error {
				if err := credential.ValidName(name); err != nil {
					return p.errf(cpath, "%v", err)
				}
				if credential.IsControl(name) {
					return p.errf(cpath, "%q is a credlink control credential and cannot be listed", name)
				}
				r, err := p.rule(cpath)
				if err != nil {
					return err
				}
				m.Names = append(m.Names, name)
				m.Credentials[name] = r
				return nil
			})
		case "unexpected":
			s, err := p.str(path)
			if err != nil {
				return err
			}
			switch Policy(s) {
			case Ignore, Warn, Fail:
				m.Unexpected = Policy(s)
				return nil
			}
			return p.errf(path, "must be \"ignore\", \"warn\" or \"fail\", not %q", s)
		default:
			return p.errf(path, "unknown field")
		}
	})
	if err != nil {
		return nil, err
	}
	if _, err := p.d.Token(); err != io.EOF {
		return nil, p.errf("", "data after the top-level object")
	}
	if !seenCreds {
		return nil, fmt.Errorf("%w: missing \"credentials\"", ErrInvalid)
	}
	return m, nil
}

type parser struct {
	src []byte
	d   *json.Decoder
}

// errf formats an error with the JSON path and the line of the decoder's position.
func (p *parser) errf(path, format string, args ...any) error {
	line := 1 + bytes.Count(p.src[:min(int(p.d.InputOffset()), len(p.src))], []byte{'\n'})
	where := path
	if where == "" {
		where = "(top level)"
	}
	return fmt.Errorf("%w: %s (line %d): %s", ErrInvalid, where, line, fmt.Sprintf(format, args...))
}

func (p *parser) token(path string) (json.Token, error) {
	t, err := p.d.Token()
	if err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, p.errf(path, "JSON syntax: %v", err)
		}
		if err == io.EOF {
			return nil, p.errf(path, "unexpected end of file")
		}
		return nil, p.errf(path, "%v", err)
	}
	return t, nil
}

// object walks an object, calling field for each key with its path; duplicate keys are errors.
func (p *parser) object(path string, field func(key, path string) error) error {
	t, err := p.token(path)
	if err != nil {
		return err
	}
	if d, ok := t.(json.Delim); !ok || d != '{' {
		return p.errf(path, "must be an object")
	}
	seen := map[string]bool{}
	for p.d.More() {
		t, err := p.token(path)
		if err != nil {
			return err
		}
		key := t.(string) // object keys are always strings
		kpath := joinPath(path, key)
		if seen[key] {
			return p.errf(kpath, "duplicate key")
		}
		seen[key] = true
		if err := field(key, kpath); err != nil {
			return err
		}
	}
	_, err = p.token(path) // '}'
	return err
}

func joinPath(path, key string) string {
	plain := key != "" && strings.Trim(key, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == ""
	if !plain {
		return path + fmt.Sprintf("[%q]", key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func (p *parser) str(path string) (string, error) {
	t, err := p.token(path)
	if err != nil {
		return "", err
	}
	s, ok := t.(string)
	if !ok {
		return "", p.errf(path, "must be a string")
	}
	return s, nil
}

func (p *parser) boolean(path string) (bool, error) {
	t, err := p.token(path)
	if err != nil {
		return false, err
	}
	b, ok := t.(bool)
	if !ok {
		return false, p.errf(path, "must be true or false")
	}
	return b, nil
}

func (p *parser) size(path string) (*int, error) {
	t, err := p.token(path)
	if err != nil {
		return nil, err
	}
	n, ok := t.(json.Number)
	if !ok {
		return nil, p.errf(path, "must be a number")
	}
	i, err := n.Int64()
	if err != nil || i < 0 || i > credential.MaxSize {
		return nil, p.errf(path, "must be a whole number from 0 to %d, not %s", credential.MaxSize, n)
	}
	v := int(i)
	return &v, nil
}

func (p *parser) rule(path string) (Rule, error) {
	r := Rule{Secret: true}
	err := p.object(path, func(key, fpath string) error {
		var err error
		switch key {
		case "bytes":
			r.Bytes, err = p.size(fpath)
		case "min_bytes":
			r.MinBytes, err = p.size(fpath)
		case "max_bytes":
			r.MaxBytes, err = p.size(fpath)
		case "optional":
			r.Optional, err = p.boolean(fpath)
		case "secret":
			r.Secret, err = p.boolean(fpath)
		case "sha256":
			var s string
			if s, err = p.str(fpath); err == nil {
				if r.SHA256, err = hex.DecodeString(s); err != nil || len(r.SHA256) != 32 {
					err = p.errf(fpath, "must be 64 hex digits")
				}
			}
		default:
			err = p.errf(fpath, "unknown field")
		}
		return err
	})
	if err != nil {
		return r, err
	}
	switch {
	case r.Bytes != nil && (r.MinBytes != nil || r.MaxBytes != nil):
		return r, p.errf(path, "\"bytes\" cannot be combined with \"min_bytes\"/\"max_bytes\"")
	case r.MinBytes != nil && r.MaxBytes != nil && *r.MinBytes > *r.MaxBytes:
		return r, p.errf(path, "\"min_bytes\" %d is greater than \"max_bytes\" %d", *r.MinBytes, *r.MaxBytes)
	}
	return r, nil
}

// Required returns the names of credentials that are not optional, in file order.
func (m *Manifest) Required() []string {
	return slices.DeleteFunc(slices.Clone(m.Names), func(n string) bool { return m.Credentials[n].Optional })
}

// maxManifest bounds a manifest file: 255 credentials with every rule are a few dozen KiB.
const maxManifest = 4 << 20
