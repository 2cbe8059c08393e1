package verify

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/credlink/credlink/pkg/credential"
	"github.com/credlink/credlink/pkg/manifest"
)

// Finding is the verdict on one credential.
type Finding struct {
	Name     string
	Status   credential.Status
	Bytes    int              // received length; 0 when missing
	Source   string           // where it was read from; empty when missing
	Detail   string           // why, for humans: "30 bytes, want 44"; never a secret value
	Listed   bool             // in the manifest
	Required bool             // listed and not optional
	Secret   bool             // listed as secret, or not listed (unknown values are treated as secret)
	Fails    bool             // counts against the overall result
	Value    credential.Value // the received value (for MACs and, when not Secret, display)
}

// Result is a whole verification.
type Result struct {
	Findings []Finding // manifest order, then unlisted ones by name
	OK       bool
	Expected int // listed credentials that must verify: required ones plus optional ones present
	Verified int // of those, how many are ok
	Time     time.Time
}

// Input is what the guest received.
type Input struct {
	// Set is the merged view the agent verifies (see sources.Read).
	Set *credential.Set
	// Compare optionally holds the same credentials read independently from other sources
	// (e.g. "smbios" and "credentials"); a name whose bytes differ between any two is a
	// source_mismatch.
	Compare map[string]*credential.Set
}

// Verify checks in against m.
func Verify(m *manifest.Manifest, in Input, now time.Time) Result {
	res := Result{OK: true, Time: now}
	// Credentials found but skipped, in the verified set first, then in the compared ones
	// (in auto mode the SMBIOS reading says why systemd's import lacks a name).
	invalid := map[string]string{}
	problems := slices.Clone(in.Set.Problems)
	for _, n := range sortedKeys(in.Compare) {
		problems = append(problems, in.Compare[n].Problems...)
	}
	for _, p := range problems {
		if errors.Is(p, credential.ErrDuplicate) || p.Name == "" || credential.ValidName(p.Name) != nil {
			continue
		}
		if _, seen := invalid[p.Name]; !seen {
			invalid[p.Name] = fmt.Sprintf("%s: %v", p.Source, p.Reason)
		}
	}
	mismatch := sourceMismatches(in.Compare)

	for _, name := range m.Names {
		rule := m.Credentials[name]
		f := Finding{Name: name, Listed: true, Required: !rule.Optional, Secret: rule.Secret}
		c, ok := in.Set.Get(name)
		elsewhere := ""
		if !ok {
			elsewhere = presentElsewhere(in.Compare, name)
		}
		switch {
		case !ok && invalid[name] != "":
			f.Status, f.Detail = credential.StatusInvalid, invalid[name]
		case elsewhere != "":
			// The firmware has it but the primary source (systemd's import) does not: systemd
			// dropped it, e.g. systemd < 257 reading only the first page of the table.
			f.Status, f.Detail = credential.StatusSourceMismatch, elsewhere
		case !ok:
			f.Status, f.Detail = credential.StatusMissing, "not received"
		default:
			f.Bytes, f.Source, f.Value = c.Value.Len(), c.Source, c.Value
			f.Status, f.Detail = check(rule, c.Value.Bytes())
			// A value the guest's systemd imports cut short (its read limit ends the SMBIOS
			// entry inside it) is not what the host sent, whatever the manifest's range says.
			if cut := cutIn(in, name); cut != "" {
				if f.Status == credential.StatusOK {
					f.Status, f.Detail = credential.StatusWrongLength, fmt.Sprintf("%d bytes", f.Bytes)
				}
				f.Detail += ": cut short, " + cut
			}
			if f.Status == credential.StatusOK && mismatch[name] != "" {
				f.Status, f.Detail = credential.StatusSourceMismatch, mismatch[name]
			}
		}
		present := f.Status != credential.StatusMissing
		f.Fails = f.Status != credential.StatusOK && (f.Required || present)
		if f.Required || present {
			res.Expected++
			if f.Status == credential.StatusOK {
				res.Verified++
			}
		}
		res.Findings = append(res.Findings, f)
	}

	var extra []Finding
	for _, c := range in.Set.All() {
		if _, listed := m.Credentials[c.Name]; listed || credential.IsControl(c.Name) || m.Unexpected == manifest.Ignore {
			continue
		}
		extra = append(extra, Finding{Name: c.Name, Status: credential.StatusUnexpected, Bytes: c.Value.Len(), Source: c.Source,
			Detail: "not in the manifest", Secret: true, Value: c.Value, Fails: m.Unexpected == manifest.Fail})
	}
	slices.SortFunc(extra, func(a, b Finding) int { return strings.Compare(a.Name, b.Name) })
	res.Findings = append(res.Findings, extra...)
	for _, f := range res.Findings {
		if f.Fails {
			res.OK = false
		}
	}
	return res
}

// check applies one rule to a value.
func check(r manifest.Rule, v []byte) (credential.Status, string) {
	n := len(v)
	switch {
	case r.Bytes != nil && n == *r.Bytes+1:
		// The commonest cause: `echo secret > file` on the host.
		return credential.StatusWrongLength, fmt.Sprintf("%d bytes, want %d: 1 byte more, a trailing newline in the host file?", n, *r.Bytes)
	case r.Bytes != nil && n != *r.Bytes:
		return credential.StatusWrongLength, fmt.Sprintf("%d bytes, want %d", n, *r.Bytes)
	case r.MinBytes != nil && n < *r.MinBytes, r.MaxBytes != nil && n > *r.MaxBytes:
		return credential.StatusWrongLength, fmt.Sprintf("%d bytes, want %s", n, rangeText(r))
	case r.SHA256 != nil:
		sum := sha256.Sum256(v)
		if subtle.ConstantTimeCompare(sum[:], r.SHA256) != 1 {
			return credential.StatusDigestMismatch, "sha256 differs from the manifest"
		}
	}
	return credential.StatusOK, fmt.Sprintf("%d bytes", n)
}

func rangeText(r manifest.Rule) string {
	switch {
	case r.MinBytes != nil && r.MaxBytes != nil:
		return fmt.Sprintf("%d..%d", *r.MinBytes, *r.MaxBytes)
	case r.MinBytes != nil:
		return fmt.Sprintf("at least %d", *r.MinBytes)
	default:
		return fmt.Sprintf("at most %d", *r.MaxBytes)
	}
}

// sourceMismatches finds names whose bytes differ between sources.
func sourceMismatches(sets map[string]*credential.Set) map[string]string {
	out := map[string]string{}
	names := sortedKeys(sets)
	for i, a := range names {
		for _, b := range names[i+1:] {
			for _, ca := range sets[a].All() {
				cb, ok := sets[b].Get(ca.Name)
				if ok && !ca.Value.Equal(cb.Value) && out[ca.Name] == "" {
					out[ca.Name] = fmt.Sprintf("%s has %d bytes, %s has %d different bytes", a, ca.Value.Len(), b, cb.Value.Len())
				}
			}
		}
	}
	return out
}

func sortedKeys(m map[string]*credential.Set) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// cutIn says why name's value is known to be cut short in the verified set or a compared one.
func cutIn(in Input, name string) string {
	if c, ok := in.Set.Get(name); ok && c.Cut != "" {
		return c.Cut
	}
	for _, n := range sortedKeys(in.Compare) {
		if c, ok := in.Compare[n].Get(name); ok && c.Cut != "" {
			return c.Cut
		}
	}
	return ""
}

// presentElsewhere describes where name exists among the compared sources, or "".
func presentElsewhere(sets map[string]*credential.Set, name string) string {
	var have, lack []string
	for _, n := range sortedKeys(sets) {
		if c, ok := sets[n].Get(name); ok {
			have = append(have, fmt.Sprintf("%s has %d bytes", n, c.Value.Len()))
		} else {
			lack = append(lack, n)
		}
	}
	if len(have) == 0 || len(lack) == 0 {
		return ""
	}
	return strings.Join(have, ", ") + ", " + strings.Join(lack, ", ") + " has none"
}

// Failures returns "NAME: detail" for every failing finding, for STATUS= lines and logs.
func (r Result) Failures() []string {
	var out []string
	for _, f := range r.Findings {
		if f.Fails {
			out = append(out, fmt.Sprintf("%s %s (%s)", f.Name, f.Status, f.Detail))
		}
	}
	return out
}

// Summary is the one-line state for STATUS=.
func (r Result) Summary() string {
	if r.OK {
		return fmt.Sprintf("%d/%d credentials verified", r.Verified, r.Expected)
	}
	return fmt.Sprintf("%d/%d credentials verified; FAILED: %s", r.Verified, r.Expected, strings.Join(r.Failures(), ", "))
}
