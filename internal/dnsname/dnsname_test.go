package dnsname

import (
	"strings"
	"testing"
)

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
