package chconfig

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// errUnbalanced does not quote the input: it may be an OEM string list.
var errUnbalanced = errors.New("invalid syntax: unbalanced double quotes or brackets")

// splitCommas splits s at commas outside brackets and double quotes, as
// option_parser/src/lib.rs split_commas: it fails on unbalanced quotes or brackets.
func splitCommas(s string) ([]string, error) {
	var list []string
	brackets := 0
	inQuotes := false
	var cur strings.Builder
	for _, c := range strings.TrimSpace(s) {
		switch {
		case c == '"':
			inQuotes = !inQuotes
		case inQuotes:
		case c == '[':
			brackets++
		case c == ']':
			if brackets < 1 {
				return nil, errUnbalanced
			}
			brackets--
		case c == ',' && brackets == 0:
			list = append(list, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteRune(c)
	}
	list = append(list, cur.String())
	if inQuotes || brackets != 0 {
		return nil, errUnbalanced
	}
	return list, nil
}

// dequote removes double quotes; a quote right after a closing quote is kept as a literal
// quote (option_parser dequote: "a\"\"b" → a"b).
func dequote(s string) string {
	var out []byte
	var prev byte
	in := false
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b == '"' {
			if prev == '"' && !in {
				out = append(out, '"')
			}
			in = !in
		} else {
			out = append(out, b)
		}
		prev = b
	}
	return string(out)
}

// optionSet is one OptionParser: the registered keys and, after parse, their raw values.
type optionSet struct {
	what      string          // "--disk", for errors
	valueless map[string]bool // registered keys that take no value
	known     map[string]bool
	values    map[string]string // raw (trimmed, still quoted) values of the keys seen
}

func newOptionSet(what string, keys []string, valueless ...string) *optionSet {
	o := &optionSet{what: what, known: map[string]bool{}, valueless: map[string]bool{}, values: map[string]string{}}
	for _, k := range keys {
		o.known[k] = true
	}
	for _, k := range valueless {
		o.known[k] = true
		o.valueless[k] = true
	}
	return o
}

// parse is OptionParser::parse: every key must be registered; key=value pairs are applied in
// order, so a failing pair leaves the earlier ones set (parse_api_socket relies on that).
func (o *optionSet) parse(input string, ignoreUnknown bool) error {
	if !utf8.ValidString(input) {
		return fmt.Errorf("%s: not valid UTF-8", o.what)
	}
	if strings.TrimSpace(input) == "" {
		return nil
	}
	opts, err := splitCommas(input)
	if err != nil {
		return fmt.Errorf("%s: %w", o.what, err)
	}
	for _, opt := range opts {
		key, val, hasValue := strings.Cut(opt, "=")
		if !o.known[key] {
			if ignoreUnknown {
				continue
			}
			return fmt.Errorf("%s: unknown option %q (cloud-hypervisor would refuse it too)", o.what, key)
		}
		if o.valueless[key] {
			o.values[key] = ""
			continue
		}
		if !hasValue {
			return fmt.Errorf("%s: invalid syntax: %q needs a value (%s=…)", o.what, opt, key)
		}
		o.values[key] = strings.TrimSpace(val)
	}
	return nil
}

// isSet says the key appeared, with or without a value.
func (o *optionSet) isSet(key string) bool { _, ok := o.values[key]; return ok }

// raw is the value as given (quotes kept); ok is false for an absent or empty value, which
// cloud-hypervisor's get/convert treat as not given.
func (o *optionSet) raw(key string) (string, bool) {
	v, ok := o.values[key]
	return v, ok && v != ""
}

// str is OptionParser::get: the dequoted value.
func (o *optionSet) str(key string) (string, bool) {
	v, ok := o.raw(key)
	if !ok {
		return "", false
	}
	return dequote(v), true
}

func (o *optionSet) strPtr(key string) *string {
	if v, ok := o.str(key); ok {
		return &v
	}
	return nil
}

func (o *optionSet) convErr(key, v string) error {
	return fmt.Errorf("%s: unable to convert %q for %s", o.what, v, key)
}

// toggle is convert::<Toggle>: on/off/true/false, any case.
func (o *optionSet) toggle(key string, def bool) (bool, error) {
	v, ok := o.raw(key)
	if !ok {
		return def, nil
	}
	switch strings.ToLower(v) {
	case "on", "true":
		return true, nil
	case "off", "false":
		return false, nil
	}
	return false, o.convErr(key, v)
}

// parseRustUint is Rust's u64::from_str: decimal digits with an optional leading '+'.
func parseRustUint(s string, bits int) (uint64, error) {
	s = strings.TrimPrefix(s, "+")
	if s == "" || s[0] == '+' || s[0] == '-' {
		return 0, strconv.ErrSyntax
	}
	return strconv.ParseUint(s, 10, bits)
}

// uint is convert::<uN> (FromStr after dequote).
func (o *optionSet) uint(key string, bits int) (uint64, bool, error) {
	v, ok := o.raw(key)
	if !ok {
		return 0, false, nil
	}
	n, err := parseRustUint(dequote(v), bits)
	if err != nil {
		return 0, false, o.convErr(key, v)
	}
	return n, true, nil
}

func (o *optionSet) uintOr(key string, bits int, def uint64) (uint64, error) {
	n, ok, err := o.uint(key, bits)
	if !ok {
		return def, err
	}
	return n, nil
}

// byteSized is convert::<ByteSized>: an integer with an optional K, M or G (binary) suffix.
// Like cloud-hypervisor it takes the shift from the last character and then strips every
// trailing K/M/G, and it does not detect overflow.
func (o *optionSet) byteSized(key string) (uint64, bool, error) {
	v, ok := o.raw(key)
	if !ok {
		return 0, false, nil
	}
	s := strings.TrimSpace(dequote(v))
	shift := 0
	switch {
	case strings.HasSuffix(s, "K"):
		shift = 10
	case strings.HasSuffix(s, "M"):
		shift = 20
	case strings.HasSuffix(s, "G"):
		shift = 30
	}
	n, err := parseRustUint(strings.TrimRight(s, "KMG"), 64)
	if err != nil {
		return 0, false, o.convErr(key, v)
	}
	return n << shift, true, nil
}

// maxListLen bounds IntegerList ranges: cloud-hypervisor would expand "[0-1000000000]" into
// memory; nothing it describes (fds, segments) comes anywhere near this.
const maxListLen = 4096

// integerList is convert::<IntegerList>: "[1,3-5]" → 1,3,4,5 (raw value, not dequoted).
func (o *optionSet) integerList(key string, bits int) ([]uint64, bool, error) {
	v, ok := o.raw(key)
	if !ok {
		return nil, false, nil
	}
	var out []uint64
	for _, r := range strings.Split(strings.Trim(strings.TrimSpace(v), "[]"), ",") {
		items := strings.Split(r, "-")
		if len(items) > 2 {
			return nil, false, o.convErr(key, v)
		}
		start, err := parseRustUint(items[0], 64)
		if err != nil {
			return nil, false, o.convErr(key, v)
		}
		end := start
		if len(items) == 2 {
			if end, err = parseRustUint(items[1], 64); err != nil || start >= end {
				return nil, false, o.convErr(key, v)
			}
		}
		if end-start >= maxListLen || len(out)+int(end-start) >= maxListLen {
			return nil, false, fmt.Errorf("%s: %s lists more than %d values", o.what, key, maxListLen)
		}
		for n := start; ; n++ {
			if bits < 64 && n >= 1<<bits {
				return nil, false, o.convErr(key, v)
			}
			out = append(out, n)
			if n == end {
				break
			}
		}
	}
	return out, true, nil
}

// stringList is convert::<StringList>: brackets trimmed, split at top-level commas, elements
// kept exactly (quotes included, no trimming).
func (o *optionSet) stringList(key string) ([]string, bool, error) {
	v, ok := o.raw(key)
	if !ok {
		return nil, false, nil
	}
	l, err := splitCommas(strings.Trim(strings.TrimSpace(v), "[]"))
	if err != nil {
		return nil, false, fmt.Errorf("%s: %s: %w", o.what, key, err)
	}
	return l, true, nil
}

// refuse reports the first key that is valid for cloud-hypervisor but not translated here.
func (o *optionSet) refuse(keys ...string) error {
	for _, k := range keys {
		if o.isSet(k) {
			return fmt.Errorf("%w: %s %s= is not translated by host-launcher; use --vm-config with a VmConfig JSON instead", ErrUnsupported, o.what, k)
		}
	}
	return nil
}
