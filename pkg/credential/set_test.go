package credential

import (
	"errors"
	"strings"
	"testing"
)

// The total limit spans merged sources, as in systemd's single import context.
func TestMergeSharesTotal(t *testing.T) {
	a := &Set{}
	_ = a.Add(cred("A", strings.Repeat("a", MaxSize-10)))
	b := &Set{}
	_ = b.Add(cred("B", strings.Repeat("b", 11)))
	m := Merge(a, b)
	if m.Len() != 1 || len(m.Problems) != 1 || !errors.Is(m.Problems[0], ErrTotalTooLarge) {
		t.Errorf("merged %v, problems %v", m.Names(), m.Problems)
	}
}
