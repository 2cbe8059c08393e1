package manifest

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/go-json-experiment/json/jsontext"

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

// Parse parses manifest JSON strictly: a duplicate key, an unknown field, invalid UTF-8, a wrong
// type or a contradictory rule is an error wrapping ErrInvalid that names the JSON path and line.
func Parse(b []byte) (*Manifest, error) {
	// jsontext (the upstream of Go's encoding/json/v2) reads tokens without the per-token
	// allocations and scanner restarts of encoding/json's Decoder.Token, which made a 255-entry
	// manifest the largest cost on guest-agent's way to its first acknowledgement byte (issue 16).
	// Duplicate names are checked here, against what was already parsed, to name them by path.
	p := &parser{src: b, d: jsontext.NewDecoder(bytes.NewReader(b), jsontext.AllowDuplicateNames(true))}
	m := &Manifest{Credentials: map[string]Rule{}, Unexpected: Warn}
	var seen uint8
	const seenCreds, seenUnexpected = 1, 2
	err := p.object(nil, func(key string, at *path) error {
		switch key {
		case "credentials":
			if seen&seenCreds != 0 {
				return p.errf(at, "duplicate key")
			}
			seen |= seenCreds
			return p.object(at, func(name string, at *path) error {
				if _, dup := m.Credentials[name]; dup {
					return p.errf(at, "duplicate key")
				}
				if err := credential.ValidName(name); err != nil {
					return p.errf(at, "%v", err)
				}
				if credential.IsControl(name) {
					return p.errf(at, "%q is a credlink control credential and cannot be listed", name)
				}
				r, err := p.rule(at)
				if err != nil {
					return err
				}
				m.Names = append(m.Names, name)
				m.Credentials[name] = r
				return nil
			})
		case "unexpected":
			if seen&seenUnexpected != 0 {
				return p.errf(at, "duplicate key")
			}
			seen |= seenUnexpected
			s, err := p.str(at)
			if err != nil {
				return err
			}
			switch Policy(s) {
			case Ignore, Warn, Fail:
				m.Unexpected = Policy(s)
				return nil
			}
			return p.errf(at, "must be \"ignore\", \"warn\" or \"fail\", not %q", s)
		default:
			return p.errf(at, "unknown field")
		}
	})
	if err != nil {
		return nil, err
	}
	if _, err := p.d.ReadToken(); err != io.EOF {
		off := p.d.InputOffset()
		var se *jsontext.SyntacticError
		if errors.As(err, &se) {
			off = se.ByteOffset
		}
		return nil, p.errAt(off, nil, "data after the top-level object")
	}
	if seen&seenCreds == 0 {
		return nil, fmt.Errorf("%w: missing \"credentials\"", ErrInvalid)
	}
	return m, nil
}

type parser struct {
	src []byte
	d   *jsontext.Decoder
}

// path is a JSON path built only when an error names it: (parent, key) links, nil at the top.
type path struct {
	parent *path
	key    string
}

// maxPathKey bounds each key an error's path shows, in bytes.
const maxPathKey = 64

func (p *path) String() string {
	if p == nil {
		return "(top level)"
	}
	var keys []string
	for q := p; q != nil; q = q.parent {
		keys = append(keys, q.key)
	}
	var b strings.Builder
	for i := len(keys) - 1; i >= 0; i-- {
		k := keys[i]
		if len(k) > maxPathKey {
			// A key is the manifest author's text, possibly megabytes of it: the error names
			// its start and size.
			k = fmt.Sprintf("%s…(%d bytes)", strings.ToValidUTF8(k[:maxPathKey], ""), len(k))
		}
		switch {
		case k == "" || strings.ContainsFunc(k, func(r rune) bool {
			return !('A' <= r && r <= 'Z' || 'a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '_' || r == '-')
		}):
			fmt.Fprintf(&b, "[%q]", k)
		case b.Len() > 0:
			b.WriteString("." + k)
		default:
			b.WriteString(k)
		}
	}
	return b.String()
}

// errf formats an error with the JSON path and the line of the decoder's position.
func (p *parser) errf(at *path, format string, args ...any) error {
	return p.errAt(p.d.InputOffset(), at, format, args...)
}

// errAt is errf at byte offset off (a syntax error's own offset, past the last good token).
func (p *parser) errAt(off int64, at *path, format string, args ...any) error {
	line := 1 + bytes.Count(p.src[:min(max(int(off), 0), len(p.src))], []byte{'\n'})
	return fmt.Errorf("%w: %s (line %d): %s", ErrInvalid, at, line, fmt.Sprintf(format, args...))
}

func (p *parser) token(at *path) (jsontext.Token, error) {
	t, err := p.d.ReadToken()
	if err != nil {
		if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
			return t, p.errf(at, "unexpected end of file")
		}
		var se *jsontext.SyntacticError
		if errors.As(err, &se) {
			return t, p.errAt(se.ByteOffset, at, "JSON syntax: %v", se.Err)
		}
		return t, p.errf(at, "%v", err)
	}
	return t, nil
}

// object walks an object, calling field for each key with its path.
func (p *parser) object(at *path, field func(key string, at *path) error) error {
	t, err := p.token(at)
	if err != nil {
		return err
	}
	if t.Kind() != '{' {
		return p.errf(at, "must be an object")
	}
	for p.d.PeekKind() != '}' {
		t, err := p.token(at)
		if err != nil {
			return err
		}
		k := t.String()
		if err := field(k, &path{at, k}); err != nil {
			return err
		}
	}
	_, err = p.token(at) // '}'
	return err
}

func (p *parser) str(at *path) (string, error) {
	t, err := p.token(at)
	if err != nil {
		return "", err
	}
	if t.Kind() != '"' {
		return "", p.errf(at, "must be a string")
	}
	return t.String(), nil
}

func (p *parser) boolean(at *path) (bool, error) {
	t, err := p.token(at)
	if err != nil {
		return false, err
	}
	if k := t.Kind(); k != 't' && k != 'f' {
		return false, p.errf(at, "must be true or false")
	}
	return t.Bool(), nil
}

func (p *parser) size(at *path) (*int, error) {
	t, err := p.token(at)
	if err != nil {
		return nil, err
	}
	if t.Kind() != '0' {
		return nil, p.errf(at, "must be a number")
	}
	i, err := t.Int()
	if err != nil || i < 0 || i > credential.MaxSize {
		return nil, p.errf(at, "must be a whole number from 0 to %d, not %s", credential.MaxSize, t.String())
	}
	v := int(i)
	return &v, nil
}

// rule fields, for duplicate detection.
var ruleFields = [...]string{"bytes", "min_bytes", "max_bytes", "optional", "secret", "sha256"}

func (p *parser) rule(at *path) (Rule, error) {
	r := Rule{Secret: true}
	var seen uint8
	err := p.object(at, func(key string, fat *path) error {
		i := slices.Index(ruleFields[:], key)
		if i < 0 {
			return p.errf(fat, "unknown field")
		}
		if seen&(1<<i) != 0 {
			return p.errf(fat, "duplicate key")
		}
		seen |= 1 << i
		var err error
		switch key {
		case "bytes":
			r.Bytes, err = p.size(fat)
		case "min_bytes":
			r.MinBytes, err = p.size(fat)
		case "max_bytes":
			r.MaxBytes, err = p.size(fat)
		case "optional":
			r.Optional, err = p.boolean(fat)
		case "secret":
			r.Secret, err = p.boolean(fat)
		case "sha256":
			var s string
			if s, err = p.str(fat); err == nil {
				if r.SHA256, err = hex.DecodeString(s); err != nil || len(r.SHA256) != 32 {
					err = p.errf(fat, "must be 64 hex digits")
				}
			}
		}
		return err
	})
	if err != nil {
		return r, err
	}
	switch {
	case r.Bytes != nil && (r.MinBytes != nil || r.MaxBytes != nil):
		return r, p.errf(at, "\"bytes\" cannot be combined with \"min_bytes\"/\"max_bytes\"")
	case r.MinBytes != nil && r.MaxBytes != nil && *r.MinBytes > *r.MaxBytes:
		return r, p.errf(at, "\"min_bytes\" %d is greater than \"max_bytes\" %d", *r.MinBytes, *r.MaxBytes)
	}
	return r, nil
}

// Required returns the names of credentials that are not optional, in file order.
func (m *Manifest) Required() []string {
	return slices.DeleteFunc(slices.Clone(m.Names), func(n string) bool { return m.Credentials[n].Optional })
}

// maxManifest bounds a manifest file: 255 credentials with every rule are a few dozen KiB.
const maxManifest = 4 << 20
