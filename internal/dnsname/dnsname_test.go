package dnsname

import (
	"strings"
	"testing"
)

// Reference: doc/design.md, "Decisions", "Node names": "lower case, no
// trailing dot".
func TestEqual(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"node1.example.com", "node1.example.com", true},
		{"Node1.Example.COM", "node1.example.com", true},
		{"node1.example.com.", "node1.example.com", true},
		{"NODE1.example.com.", "node1.EXAMPLE.com", true},
		{"node1.example.com", "node2.example.com", false},
		{"node1", "node1.example.com", false},
		{"", "", false},
		{".", "", false},
	} {
		if got := Equal(tc.a, tc.b); got != tc.want {
			t.Errorf("Equal(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
	if got := Normalize("Node1.Example.COM."); got != "node1.example.com" {
		t.Errorf("Normalize = %q", got)
	}
}

// Reference: doc/design.md, "Marking down", names: every name from the
// cluster is checked before it reaches a path or a command line.
func TestCheck(t *testing.T) {
	good := []string{"xen1.example.com", "a", "web_1.example.com", "UPPER.example.com", strings.Repeat("a", 63), "x-1.y", "1.2.3.4"}
	bad := []string{"", ".", "a.", ".a", "a..b", "-a", "a.-b", "a/b", "../escape/pwn", "..", "a b", "a\x00b", "a\nb", "ä.example.com",
		strings.Repeat("a", 64), strings.Repeat("a.", 127) + "ab", "a|b", "a,b", `a"b`}
	for _, s := range good {
		if err := Check(s); err != nil {
			t.Errorf("Check(%q) = %v, want ok", s, err)
		}
	}
	for _, s := range bad {
		if Check(s) == nil {
			t.Errorf("Check(%q) accepted", s)
		}
	}
	if q := Quote(strings.Repeat("x", 100)); !strings.HasSuffix(q, `... (100 bytes)`) || len(q) > 100 {
		t.Errorf("Quote of a long name: %s", q)
	}
}
