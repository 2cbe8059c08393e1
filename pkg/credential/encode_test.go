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
		set := ParseOEMStrings([]string{s}, SystemdLatest)
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
	roomy := Budget{MaxStrings: smbios.MaxStrings, MaxTableBytes: 1 << 30}
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
		{"too large", []Credential{cred("BIG", big+"x")}, roomy, `credential "BIG": credential larger than 1 MiB (1048577 bytes)`, ErrTooLarge},
		{"total", []Credential{cred("A", big[:MaxSize-1]), cred("B", "xy")}, roomy, `credential "B": credentials exceed 1 MiB in total (1048577 bytes with the ones before it)`, ErrTotalTooLarge},
		{"256 strings in one structure", many, BudgetFor(SystemdLatest, 1, "cloud-hypervisor"),
			`credential "C255": SMBIOS budget exceeded: it is OEM string 256, but one Type 11 structure holds 255 and this delivery (cloud-hypervisor) builds only 1`, ErrBudget},
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
	// The budget is exact: a table of exactly 65535 bytes is accepted.
	fill := smbios.MaxTable32 - DefaultReserved - smbios.StructureSize([]string{PrefixText + "A="})
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
	room := smbios.MaxTable32 - DefaultReserved - 100
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
		// Small structures of at most 7 strings, so that most sets span several.
		b := DefaultBudget
		b.MaxStrings, b.MaxStructures = 7, 0
		groups, err := Encode(creds, b)
		if err != nil {
			t.Fatalf("iteration %d: %v", iter, err)
		}
		ept := smbios.EntryPoint32
		if iter%2 == 1 {
			ept = smbios.EntryPoint64
		}
		tb, err := smbios.Build(groups, ept)
		if err != nil {
			t.Fatalf("iteration %d: %v", iter, err)
		}
		raws, _, err := smbios.ParseTable(tb.EntryPoint, tb.Data)
		if err != nil {
			t.Fatal(err)
		}
		fromTable := smbios.Import(raws, smbios.EntryReadFull)
		fromEntries := smbios.Import(tb.Entries, smbios.EntryReadFull)
		if fromTable.Stop != nil || fromEntries.Stop != nil || fromEntries.Entries != len(groups) {
			t.Fatalf("iteration %d: %v %v", iter, fromTable.Stop, fromEntries.Stop)
		}
		for _, got := range []*Set{ParseOEMStrings(fromTable.Strings, SystemdLatest), ParseOEMStrings(fromEntries.Strings, SystemdLatest)} {
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
		if _, err := Encode(creds, Budget{MaxStrings: smbios.MaxStrings, MaxTableBytes: smbios.MaxTable32}); err != nil {
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
	groups, err := Encode(creds, Budget{MaxStrings: smbios.MaxStrings, MaxTableBytes: smbios.MaxTable32})
	if err != nil {
		b.Fatal(err)
	}
	strs := Flatten(groups)
	b.ReportAllocs()
	for b.Loop() {
		if s := ParseOEMStrings(strs, SystemdLatest); s.Len() != 255 {
			b.Fatal(s.Len())
		}
	}
}

// TestEncodeStructures is how Encode spreads OEM strings over Type 11 structures: 255 strings
// each, and for systemd before 257 at most one page each; where the delivery builds only one
// structure, the credential that does not fit is named.
func TestEncodeStructures(t *testing.T) {
	n := func(count int, value string) []Credential {
		out := make([]Credential, count)
		for i := range out {
			out[i] = cred(fmt.Sprintf("C%03d", i), value)
		}
		return out
	}
	page := strings.Repeat("p", 1000) // 1,028-byte OEM strings: three fit a page
	tests := []struct {
		name  string
		creds []Credential
		b     Budget
		sizes []int // strings per structure
		err   string
	}{
		{"600 small credentials, any number of structures", n(600, "v"), BudgetFor(SystemdLatest, 0, ""), []int{255, 255, 90}, ""},
		{"255 fit one structure", n(255, "v"), BudgetFor(SystemdLatest, 1, "x"), []int{255}, ""},
		{"256 do not fit one structure", n(256, "v"), BudgetFor(SystemdLatest, 1, "QEMU -smbios type=11,path="), nil,
			`credential "C255": SMBIOS budget exceeded: it is OEM string 256, but one Type 11 structure holds 255 and this delivery (QEMU -smbios type=11,path=) builds only 1`},
		{"systemd 252: a structure per page", n(9, page), BudgetFor(252, 0, ""), []int{3, 3, 3}, ""},
		{"systemd 252, one structure: the string past the page is named", n(9, page), BudgetFor(252, 1, "cloud-hypervisor"), nil,
			`credential "C003": SMBIOS budget exceeded: its OEM string would end at byte 4118 of the Type 11 structure, but systemd before 257 reads only the first 4096 bytes and would drop or cut it, and this delivery (cloud-hypervisor) builds only 1 structure(s) (fewer or smaller credentials, QEMU -smbios file= delivery, or a guest with systemd >= 257)`},
		{"systemd 252: a string longer than a page fits nowhere", []Credential{cred("BIG", strings.Repeat("b", 4090))}, BudgetFor(252, 0, ""), nil,
			`credential "BIG": SMBIOS budget exceeded: its 4116-byte OEM string does not fit in the first 4096 bytes of a Type 11 entry, all that systemd before 257 reads; it would be cut short (a smaller credential, or a guest with systemd >= 257)`},
		{"systemd 257 reads whole structures", n(9, page), BudgetFor(257, 1, ""), []int{9}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			groups, err := Encode(tt.creds, tt.b)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err || !errors.Is(err, ErrBudget) {
					t.Fatalf("err = %v,\nwant %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var sizes []int
			for _, g := range groups {
				sizes = append(sizes, len(g))
				if tt.b.MaxStructureBytes > 0 && smbios.StructureSize(g) > tt.b.MaxStructureBytes {
					t.Errorf("structure of %d bytes exceeds %d", smbios.StructureSize(g), tt.b.MaxStructureBytes)
				}
			}
			if fmt.Sprint(sizes) != fmt.Sprint(tt.sizes) {
				t.Errorf("structures %v, want %v", sizes, tt.sizes)
			}
			// What systemd of that version reads back is everything, whole.
			root := t.TempDir()
			if err := smbios.WriteTree(root, groups); err != nil {
				t.Fatal(err)
			}
			v := SystemdLatest
			if tt.b.MaxStructureBytes > 0 {
				v = 252
			}
			raws, err := smbios.ReadEntries(root)
			if err != nil {
				t.Fatal(err)
			}
			im := smbios.Import(raws, v.EntryReadLimit()) // what sources.SMBIOS does
			set := ParseOEMStrings(im.Strings, v)
			if set.Len() != len(tt.creds) || im.Stop != nil || len(im.Cut) != 0 {
				t.Fatalf("read back: %d of %d, stop %v, cut %d", set.Len(), len(tt.creds), im.Stop, len(im.Cut))
			}
		})
	}
}

// Every systemd below 257 reads one page of a Type 11 entry — measured on 252 (test/e2e) and
// 254 (test/nested TestSystemd254Truncation) — so the launcher's budget holds it to 4096 bytes.
func TestBudgetForEveryVersionBelow257(t *testing.T) {
	for v := Systemd(252); v <= 260; v++ {
		got := BudgetFor(v, 1, "").MaxStructureBytes
		if want := v < 257; want != (got == smbios.EntryReadPage) {
			t.Errorf("%v: MaxStructureBytes %d", v, got)
		}
	}
}
