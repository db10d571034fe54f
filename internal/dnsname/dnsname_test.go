package dnsname

import "testing"

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
