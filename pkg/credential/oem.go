package credential

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// OEM string prefixes systemd recognises (import-creds.c).
const (
	PrefixText   = "io.systemd.credential:"
	PrefixBinary = "io.systemd.credential.binary:"
)

// ParseOEMStrings imports credentials from SMBIOS Type 11 OEM strings, in table order, exactly
// as systemd v does (parse_smbios_strings in src/core/import-creds.c):
//
//   - strings without either prefix are ignored (counted in Set.Ignored);
//   - the name runs to the first '='; a string without '=' is skipped;
//   - an invalid name, undecodable base64 (see [DecodeBase64]) or an oversize value skips that
//     credential only;
//   - the first credential of a name wins.
//
// The strings of every Type 11 structure should be passed in one call, in order, because the
// total size limit and the first-wins rule span all of them.
func ParseOEMStrings(oem []string, v Systemd) *Set {
	s := &Set{}
	for _, str := range oem {
		ParseOEMString(s, str, v)
	}
	return s
}

// ParseOEMString imports one OEM string into s under the rules of systemd v (see
// ParseOEMStrings).
func ParseOEMString(s *Set, str string, v Systemd) {
	var binary bool
	rest, ok := strings.CutPrefix(str, PrefixText)
	if !ok {
		if rest, ok = strings.CutPrefix(str, PrefixBinary); !ok {
			s.Ignored++
			return
		}
		binary = true
	}
	name, data, ok := strings.Cut(rest, "=")
	if !ok {
		// The whole string may be a value someone forgot the name for: report no part of it.
		_ = s.Skip("", SourceSMBIOS, ErrNoEquals)
		return
	}
	if err := ValidName(name); err != nil {
		_ = s.Skip(name, SourceSMBIOS, err)
		return
	}
	var value []byte
	if binary {
		var err error
		if value, err = DecodeBase64(data, v); err != nil {
			_ = s.Skip(name, SourceSMBIOS, err)
			return
		}
	} else {
		value = []byte(data)
	}
	_ = s.Add(Credential{Name: name, Value: NewValue(value), Source: SourceSMBIOS})
}

// DecodeBase64 decodes base64 the way systemd v's unbase64mem (src/basic/hexdecoct.c) does:
// '=' padding required to a multiple of four characters, no bits left over in the last group,
// nothing after the padding, space, tab, CR and LF ignored anywhere; the standard alphabet, and
// from systemd 255 on also the URL-safe one ('-' for '+', '_' for '/', mixed freely, as
// unbase64char maps each character on its own). The error says where decoding failed but never
// repeats the input.
func DecodeBase64(data string, v Systemd) ([]byte, error) {
	urlSafe := 0
	compact := make([]byte, 0, len(data))
	for i := 0; i < len(data); i++ {
		switch c := data[i]; c {
		case ' ', '\t', '\r', '\n':
		case '-', '_':
			urlSafe++
			if v.URLSafeBase64() {
				c = urlSafeToStd(c)
			}
			compact = append(compact, c)
		default:
			compact = append(compact, c)
		}
	}
	out, err := base64.StdEncoding.Strict().DecodeString(string(compact))
	if err != nil {
		hint := ""
		if urlSafe > 0 && !v.URLSafeBase64() {
			hint = fmt.Sprintf(" (the value uses the URL-safe alphabet, which %s does not accept; systemd >= %d does)", v, int(SystemdURLSafeBase64))
		}
		if cie, ok := err.(base64.CorruptInputError); ok {
			return nil, fmt.Errorf("%w at character %d of %d%s", ErrBadBase64, int64(cie), len(compact), hint)
		}
		return nil, fmt.Errorf("%w%s", ErrBadBase64, hint)
	}
	return out, nil
}

// OEMStringInfo describes a credential OEM string without decoding more than needed: its name,
// its value's decoded size and its form. ok is false for strings that are not credentials (or
// lack '='). A binary value that does not decode reports size -1.
func OEMStringInfo(s string) (name string, size int, enc Encoding, ok bool) {
	rest, isText := strings.CutPrefix(s, PrefixText)
	if !isText {
		if rest, ok = strings.CutPrefix(s, PrefixBinary); !ok {
			return "", 0, 0, false
		}
		enc = Binary
	}
	name, data, ok := strings.Cut(rest, "=")
	if !ok {
		return "", 0, 0, false
	}
	if enc == Text {
		return name, len(data), Text, true
	}
	v, err := DecodeBase64(data, SystemdLatest)
	if err != nil {
		return name, -1, Binary, true
	}
	return name, len(v), Binary, true
}

// RedactOEMString is s with a credential's value replaced by its decoded size, e.g.
// "io.systemd.credential.binary:credlink.key=[redacted 32 bytes]"; other strings are returned
// unchanged. Every display of an OEM string (plans, the API proxy) goes through it.
func RedactOEMString(s string) string {
	name, size, enc, ok := OEMStringInfo(s)
	if !ok {
		if strings.HasPrefix(s, PrefixText) || strings.HasPrefix(s, PrefixBinary) {
			return "[redacted malformed credential]"
		}
		return s
	}
	prefix := PrefixText
	if enc == Binary {
		prefix = PrefixBinary
	}
	if size < 0 {
		return prefix + name + "=[redacted, invalid base64]"
	}
	return fmt.Sprintf("%s%s=[redacted %d bytes]", prefix, name, size)
}

func urlSafeToStd(c byte) byte {
	if c == '-' {
		return '+'
	}
	return '/'
}
