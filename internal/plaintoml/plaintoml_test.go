package plaintoml

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestScan checks what the subset reads and where it stops (the full
// decoder takes over there: see config's FuzzParseSimple).
func TestScan(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		ok   bool
	}{
		{"# c\n\n[xen]\ncommand = \"/usr/lib/ganeti-userdown/real/xl\" # the diverted one\n", []string{"xen", `xen.command="/usr/lib/ganeti-userdown/real/xl"`}, true},
		{"[crash]\n  keep = 7\n[xen]\ntoolstack='xm'\n", []string{"crash", "crash.keep=7", "xen", `xen.toolstack="xm"`}, true},
		{"command = \"/x\"\n", nil, false},                         // outside a section
		{"[xen]\ncommand = \"/a\\\\b\"\n", []string{"xen"}, false}, // an escape
		{"[xen]\ncommand = \"/a\"\r\n", []string{"xen"}, false},    // CRLF
		{"[xen]\n[xen]\n", []string{"xen"}, false},                 // a table twice
		{"[xen]\na = 1\na = 2\n", []string{"xen", "xen.a=1"}, false},
		{"[xen.sub]\n", nil, false},
		{"[xen]\nkeep = 007\n", []string{"xen"}, false},
		{"[xen]\nflag = true\n", []string{"xen"}, false},
		{"# \x01\n", nil, false},
		{"\xff", nil, false},
	} {
		var got []string
		ok := Scan([]byte(tc.in), func(section, key string, v Value) bool {
			switch {
			case key == "":
				got = append(got, section)
			case v.IsInt:
				got = append(got, fmt.Sprintf("%s.%s=%d", section, key, v.Int))
			default:
				got = append(got, fmt.Sprintf("%s.%s=%q", section, key, v.String))
			}
			return true
		})
		if ok != tc.ok {
			t.Errorf("%q: ok = %v, want %v", tc.in, ok, tc.ok)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%q: calls (-want +got):\n%s", tc.in, diff)
		}
	}
}
