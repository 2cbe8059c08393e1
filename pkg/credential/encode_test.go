package credential

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/credlink/credlink/pkg/smbios"
)

func cred(name, value string) Credential {
	return Credential{Name: name, Value: NewValue([]byte(value))}
}

func TestEncodingChoice(t *testing.T) {
	tests := []struct {
		value string
		want  Encoding
	}{
		{"plain-Value_1.2/3+4=", Text},
		{"inner space ok", Text},
		{"", Text},
		{"a,b", Binary},        // QEMU value= doubles commas; cloud-hypervisor splits lists on them
		{"[x]", Binary},        // cloud-hypervisor list brackets
		{`"q"`, Binary},        // quoting
		{`back\slash`, Binary}, // escapes
		{" lead", Binary},      // trimmed by tools
		{"trail ", Binary},
		{"nul\x00", Binary},
		{"line\n", Binary},
		{"\xff\xfe", Binary},
		{"tab\t", Binary},
	}
	for _, tt := range tests {
		s, enc := EncodeOEMString("N", []byte(tt.value))
		if enc != tt.want {
			t.Errorf("%q: encoding %v, want %v", tt.value, enc, tt.want)
		}
		set := ParseOEMStrings([]string{s})
		if c, ok := set.Get("N"); !ok || string(c.Value.Bytes()) != tt.value {
			t.Errorf("%q: did not decode back", tt.value)
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	big := strings.Repeat("x", MaxSize)
	many := make([]Credential, 256)
	for i := range many {
		many[i] = cred(fmt.Sprintf("C%03d", i), "v")
	}
	chunk := strings.Repeat("y", 21000)
	tests := []struct {
		name  string
		creds []Credential
		b     Budget
		err   string
		is    error
	}{
		{"invalid name", []Credential{cred("ok", "1"), cred("a/b", "2")}, DefaultBudget, "credential #2 <invalid name, 3 bytes>: invalid credential name: '/' at byte 1", ErrInvalidName},
		{"empty name", []Credential{cred("", "2")}, DefaultBudget, "credential #1 <invalid name, 0 bytes>: invalid credential name: empty", ErrInvalidName},
		{"duplicate", []Credential{cred("A", "1"), cred("A", "2")}, DefaultBudget, `credential "A": duplicate credential`, ErrDuplicate},
		{"too large", []Credential{cred("BIG", big+"x")}, Budget{MaxStrings: 255, MaxTableBytes: 1 << 30, Reserved: 0}, `credential "BIG": credential larger than 1 MiB (1048577 bytes)`, ErrTooLarge},
		{"total", []Credential{cred("A", big[:MaxSize-1]), cred("B", "xy")}, Budget{MaxStrings: 255, MaxTableBytes: 1 << 30, Reserved: 0}, `credential "B": credentials exceed 1 MiB in total (1048577 bytes with the ones before it)`, ErrTotalTooLarge},
		{"256 strings", many, Budget{MaxStrings: 255, MaxTableBytes: 1 << 30, Reserved: 0}, `credential "C255": SMBIOS budget exceeded: it is OEM string 256, one SMBIOS Type 11 structure holds 255`, ErrBudget},
		{"table bytes", []Credential{cred("A", chunk), cred("B", chunk), cred("C", chunk)}, DefaultBudget,
			`credential "C": SMBIOS budget exceeded: its 21024-byte OEM string brings the SMBIOS table to 67177 bytes, above 65535 (4096 reserved for the hypervisor's own structures)`, ErrBudget},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Encode(tt.creds, tt.b)
			if err == nil || err.Error() != tt.err || !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, want %q", err, tt.err)
			}
		})
	}
	// systemd before 257 reads one page of the structure: a string ending past byte 4096 is refused.
	old := BudgetFor(252)
	fits := 4096 - 5 - len(PrefixText+"A=") - 1
	if _, err := Encode([]Credential{cred("A", strings.Repeat("p", fits))}, old); err != nil {
		t.Errorf("string ending at byte 4096: %v", err)
	}
	_, err := Encode([]Credential{cred("A", strings.Repeat("p", fits+1))}, old)
	if want := `credential "A": SMBIOS budget exceeded: its OEM string ends at byte 4097 of the Type 11 structure, but systemd before 257 reads only the first 4096 bytes`; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("one byte past the page: %v", err)
	}
	if _, err := Encode([]Credential{cred("A", strings.Repeat("p", fits+1))}, BudgetFor(257)); err != nil {
		t.Errorf("systemd 257 reads the whole structure: %v", err)
	}

	// The budget is exact: a table of exactly 65535 bytes is accepted.
	fill := MaxTableBytes - DefaultReserved - StructureSize([]string{PrefixText + "A="})
	if _, err := Encode([]Credential{cred("A", strings.Repeat("z", fill))}, DefaultBudget); err != nil {
		t.Errorf("table filled to the byte: %v", err)
	}
	if _, err := Encode([]Credential{cred("A", strings.Repeat("z", fill+1))}, DefaultBudget); !errors.Is(err, ErrBudget) {
		t.Errorf("one byte over: %v", err)
	}
}

// randomCredentials draws a valid credential set: names of every allowed byte, values of any
// bytes, sized to fit the default budget.
func randomCredentials(r *rand.Rand) []Credential {
	n := r.IntN(40) + 1
	creds := make([]Credential, 0, n)
	seen := map[string]bool{}
	room := MaxTableBytes - DefaultReserved - 100
	for len(creds) < n {
		nameLen := r.IntN(30) + 1
		nb := make([]byte, nameLen)
		for i := range nb {
			for {
				c := byte(0x20 + r.IntN(0x7f-0x20))
				if c != '/' && c != ':' && c != '=' { // '=' is a valid name byte but ends the name in OEM strings
					nb[i] = c
					break
				}
			}
		}
		name := string(nb)
		if ValidName(name) != nil || seen[name] {
			continue
		}
		var value []byte
		switch r.IntN(3) {
		case 0: // printable
			value = []byte(strings.Repeat(string(rune('a'+r.IntN(26))), r.IntN(200)))
		case 1: // arbitrary bytes
			value = make([]byte, r.IntN(300))
			for i := range value {
				value[i] = byte(r.UintN(256))
			}
		default: // printable with the characters that force binary
			value = []byte(fmt.Sprintf(" a,b[%d]\"\\ ", r.IntN(1000)))
		}
		s, _ := EncodeOEMString(name, value)
		if room -= len(s) + 1; room < 0 {
			break
		}
		seen[name] = true
		creds = append(creds, Credential{Name: name, Value: NewValue(value)})
	}
	return creds
}

// TestEncodeDecodeProperty: for arbitrary valid names and byte values, encoding, laying out an
// SMBIOS table, reading it back through both sysfs paths and parsing returns the identical set.
func TestEncodeDecodeProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for iter := range 300 {
		creds := randomCredentials(r)
		strs, err := Encode(creds, DefaultBudget)
		if err != nil {
			t.Fatalf("iteration %d: %v", iter, err)
		}
		ept := smbios.EntryPoint32
		if iter%2 == 1 {
			ept = smbios.EntryPoint64
		}
		tb, err := smbios.Build([][]string{strs}, ept)
		if err != nil {
			t.Fatalf("iteration %d: %v", iter, err)
		}
		fromTable, _, err := smbios.ParseTable(tb.EntryPoint, tb.Data)
		if err != nil {
			t.Fatal(err)
		}
		fromEntry, err := smbios.ParseEntry(tb.Entries[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, got := range []*Set{ParseOEMStrings(fromTable), ParseOEMStrings(fromEntry)} {
			if got.Len() != len(creds) || len(got.Problems) != 0 || got.Ignored != 0 {
				t.Fatalf("iteration %d: %d credentials in, %d out, problems %v", iter, len(creds), got.Len(), got.Problems)
			}
			for _, c := range creds {
				g, ok := got.Get(c.Name)
				if !ok || !g.Value.Equal(c.Value) {
					t.Fatalf("iteration %d: %q did not survive (present %v)", iter, c.Name, ok)
				}
			}
		}
	}
}

func BenchmarkEncode255(b *testing.B) {
	creds := make([]Credential, 255)
	for i := range creds {
		v := make([]byte, 150)
		for j := range v {
			v[j] = byte(i + j)
		}
		creds[i] = Credential{Name: fmt.Sprintf("CRED_%03d", i), Value: NewValue(v)}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(creds, Budget{MaxStrings: 255, MaxTableBytes: MaxTableBytes, Reserved: 0}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse255(b *testing.B) {
	creds := make([]Credential, 255)
	for i := range creds {
		v := make([]byte, 150)
		for j := range v {
			v[j] = byte(i + j)
		}
		creds[i] = Credential{Name: fmt.Sprintf("CRED_%03d", i), Value: NewValue(v)}
	}
	strs, err := Encode(creds, Budget{MaxStrings: 255, MaxTableBytes: MaxTableBytes, Reserved: 0})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if s := ParseOEMStrings(strs); s.Len() != 255 {
			b.Fatal(s.Len())
		}
	}
}
