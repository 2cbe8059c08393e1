package credential

import (
	"fmt"
	"slices"
)

// Problem is a credential that was found but not imported, with the reason. Reason wraps one of
// the package's sentinel errors and never contains the value.
type Problem struct {
	Name   string // as found; may be invalid or empty, so print it with Error, not %s
	Source string
	Reason error
}

func (p Problem) Error() string {
	where := ""
	if p.Source != "" {
		where = " from " + p.Source
	}
	if p.Name == "" {
		return fmt.Sprintf("credential%s skipped: %v", where, p.Reason)
	}
	return fmt.Sprintf("credential %s%s skipped: %v", DisplayName(p.Name), where, p.Reason)
}

func (p Problem) Unwrap() error { return p.Reason }

// Set is the result of importing credentials under systemd's rules: the first credential of a
// name wins, each is at most [MaxSize] bytes, and all together at most [MaxTotal] bytes.
// The zero value is empty and ready to use.
type Set struct {
	creds []Credential
	index map[string]int
	total int

	// Ignored counts OEM strings that were not credentials at all (other vendors' strings);
	// systemd skips them silently.
	Ignored int
	// Problems lists the credentials that were found but skipped, in the order found.
	Problems []Problem
	// Warnings are facts about the source that are not about one skipped credential: an entry
	// systemd reads only in part, or stops at. They never hold a value.
	Warnings []string
}

// Add imports one credential under systemd's rules, in systemd's order: the size checks come
// before the duplicate check, and a skipped duplicate does not count towards the total.
// A skipped credential is recorded in Problems and returned as the error.
func (s *Set) Add(c Credential) error {
	if err := ValidName(c.Name); err != nil {
		return s.Skip(c.Name, c.Source, err)
	}
	n := c.Value.Len()
	if n > MaxSize {
		return s.Skip(c.Name, c.Source, fmt.Errorf("%w (%d bytes)", ErrTooLarge, n))
	}
	if n > MaxTotal-s.total {
		return s.Skip(c.Name, c.Source, fmt.Errorf("%w (%d bytes do not fit in the %d left)", ErrTotalTooLarge, n, MaxTotal-s.total))
	}
	if _, dup := s.index[c.Name]; dup {
		return s.Skip(c.Name, c.Source, fmt.Errorf("%w: an earlier one (from %s) wins", ErrDuplicate, s.creds[s.index[c.Name]].Source))
	}
	if s.index == nil {
		s.index = make(map[string]int)
	}
	s.index[c.Name] = len(s.creds)
	s.creds = append(s.creds, c)
	s.total += n
	return nil
}

// Skip records a credential that was not imported, and why (never its value); the Problem it
// returns is also in s.Problems. Sources (package sources) call it for entries they cannot read.
func (s *Set) Skip(name, source string, reason error) error {
	p := Problem{Name: name, Source: source, Reason: reason}
	s.Problems = append(s.Problems, p)
	return p
}

// MarkCut records on an imported credential why its value is cut short.
func (s *Set) MarkCut(name, why string) {
	if i, ok := s.index[name]; ok {
		s.creds[i].Cut = why
	}
}

// Get returns the credential called name.
func (s *Set) Get(name string) (Credential, bool) {
	i, ok := s.index[name]
	if !ok {
		return Credential{}, false
	}
	return s.creds[i], true
}

// All returns the imported credentials in import order.
func (s *Set) All() []Credential { return slices.Clone(s.creds) }

// Len is the number of imported credentials.
func (s *Set) Len() int { return len(s.creds) }

// TotalBytes is the sum of the imported credentials' sizes.
func (s *Set) TotalBytes() int { return s.total }

// Names returns the imported names, sorted.
func (s *Set) Names() []string {
	names := make([]string, 0, len(s.creds))
	for _, c := range s.creds {
		names = append(names, c.Name)
	}
	slices.Sort(names)
	return names
}

// Merge combines sets in precedence order, as systemd combines its sources (fw_cfg, then SMBIOS):
// a name already imported from an earlier set wins, and the 1 MiB total applies across all of
// them. Problems and ignored counts are carried over.
func Merge(sets ...*Set) *Set {
	out := &Set{}
	for _, s := range sets {
		if s == nil {
			continue
		}
		out.Ignored += s.Ignored
		out.Problems = append(out.Problems, s.Problems...)
		out.Warnings = append(out.Warnings, s.Warnings...)
		for _, c := range s.creds {
			_ = out.Add(c) // a skip is recorded in out.Problems
		}
	}
	return out
}
