package chconfig

import (
	"reflect"
	"testing"
)

// Vectors from option_parser/src/lib.rs's unit tests (cloud-hypervisor ae44c297), restated.

func TestSplitCommas(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{`""`, []string{`""`}},
		{"size=128M,mergeable=on", []string{"size=128M", "mergeable=on"}},
		{"topology=[[1,2],[3,4]],a=b", []string{"topology=[[1,2],[3,4]]", "a=b"}},
		{`cmdline="console=ttyS0,9600n8"`, []string{`cmdline="console=ttyS0,9600n8"`}},
		{`topology=["@""b"@[1,2]]`, []string{`topology=["@""b"@[1,2]]`}},
		{"  a=1 ,b=2  ", []string{"a=1 ", "b=2"}},
		{"a=1,", []string{"a=1", ""}},
	} {
		got, err := splitCommas(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("splitCommas(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"[a,b", "a]", "[a]]", "[[[a]]", `"abc`, `cmdline="`, `cmdline="""`, "topology=[", "topology=[[[]]]]"} {
		if _, err := splitCommas(bad); err == nil {
			t.Errorf("splitCommas(%q) accepted unbalanced input", bad)
		}
	}
}

func TestDequote(t *testing.T) {
	for in, want := range map[string]string{
		"a\u03b2\"a\"\"\"": "a\u03b2a\"", // check_dequote
		`a="b"`:            "a=b",        // parse_bytes
		`"a,b,c"`:          "a,b,c",
		`""`:               "",
		`""""`:             `"`,
	} {
		if got := dequote(in); got != want {
			t.Errorf("dequote(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOptionSetParse(t *testing.T) {
	o := newOptionSet("--x", []string{"size", "mergeable", "hotplug_method", "hotplug_size", "topology", "cmdline", "extra"})
	for _, bad := range []string{"size=128M,hanging_param", "size=128M,file=/dev/shm", "size", "mergeable=on, size=1", "size=1,"} {
		if err := o.parse(bad, false); err == nil {
			t.Errorf("parse(%q) accepted", bad)
		}
	}
	o = newOptionSet("--x", []string{"size", "mergeable", "topology", "cmdline", "extra"})
	must := func(s string) {
		t.Helper()
		if err := o.parse(s, false); err != nil {
			t.Fatalf("parse(%q): %v", s, err)
		}
	}
	must("extra=foo=bar")
	if v, _ := o.str("extra"); v != "foo=bar" {
		t.Errorf("extra = %q", v)
	}
	must("size=128M,mergeable=on,topology=[[1,2],[3,4]]")
	if v, _ := o.str("topology"); v != "[[1,2],[3,4]]" {
		t.Errorf("topology = %q", v)
	}
	must(`cmdline="console=ttyS0,9600n8"`)
	if v, _ := o.str("cmdline"); v != "console=ttyS0,9600n8" {
		t.Errorf("cmdline = %q", v)
	}
	must("size=")
	if _, ok := o.str("size"); ok || !o.isSet("size") {
		t.Error(`"size=" must be set but have no value`)
	}
	must("   ")
	must("size= 7 ")
	if v, _ := o.str("size"); v != "7" {
		t.Errorf("value not trimmed: %q", v)
	}
	must("size=1,size=2")
	if v, _ := o.str("size"); v != "2" {
		t.Errorf("last repeated key must win, got %q", v)
	}
	v := newOptionSet("--x", []string{"path"}, "readonly")
	if err := v.parse("path=/dev/sda,readonly", false); err != nil || !v.isSet("readonly") {
		t.Errorf("valueless: %v", err)
	}
	s := newOptionSet("--x", []string{"known"})
	if err := s.parse("known=val,unknown=other", true); err != nil {
		t.Errorf("parse_subset: %v", err)
	}
}

func TestConversions(t *testing.T) {
	conv := func(val string) *optionSet {
		o := newOptionSet("--x", []string{"k"})
		if err := o.parse("k="+val, false); err != nil {
			t.Fatalf("parse %q: %v", val, err)
		}
		return o
	}
	for in, want := range map[string]bool{"on": true, "off": false, "true": true, "false": false, "ON": true, "OFF": false, "True": true, "False": false} {
		if got, err := conv(in).toggle("k", !want); err != nil || got != want {
			t.Errorf("toggle(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := conv("maybe").toggle("k", false); err == nil {
		t.Error("toggle accepted maybe")
	}
	for in, want := range map[string]uint64{"1024": 1024, "1K": 1024, "2M": 2 << 20, "4G": 4 << 30, "0K": 0, "+5": 5, `"2M"`: 2 << 20, "1MK": 1 << 10} {
		if got, _, err := conv(in).byteSized("k"); err != nil || got != want {
			t.Errorf("byteSized(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"xyzK", "K", "-1", "1T", "1 M"} {
		if _, _, err := conv(bad).byteSized("k"); err == nil {
			t.Errorf("byteSized accepted %q", bad)
		}
	}
	for in, want := range map[string][]uint64{"[1,3,5]": {1, 3, 5}, "[0,2-4,7]": {0, 2, 3, 4, 7}, "3": {3}} {
		if got, _, err := conv(in).integerList("k", 64); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("integerList(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"[5-3]", "[5-5]", "[1-2-3]", "[]", "[1, 2]", "[0-100000]"} {
		if _, _, err := conv(bad).integerList("k", 64); err == nil {
			t.Errorf("integerList accepted %q", bad)
		}
	}
	if _, _, err := conv("[65536]").integerList("k", 16); err == nil {
		t.Error("integerList<u16> accepted 65536")
	}
	for in, want := range map[string][]string{"[foo,bar,baz]": {"foo", "bar", "baz"}, `"foo,bar"`: {`"foo,bar"`}, `["a,b",c]`: {`"a,b"`, "c"}, "[]": {""}, " [ a ] ": {"a"}, "[a ,b]": {"a ", "b"}} {
		o := newOptionSet("--x", []string{"k"})
		if err := o.parse("k="+in, false); err != nil {
			t.Fatal(err)
		}
		if got, _, err := o.stringList("k"); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("stringList(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
