package config

import (
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// simpleSeeds are documents of the subset parseSimple reads, and some
// just outside it.
var simpleSeeds = []string{
	"",
	"# only a comment\n",
	"[xen]\ncommand = \"/usr/lib/ganeti-userdown/real/xl\"\n",
	"[xen]\n  toolstack = 'xm' # the old one\ncommand='/usr/lib/ganeti-userdown/real/xm'\n[crash]\nkeep = 7\n",
	"[ xen ]\ntimeout = \"5s\"\n[actions]\non_shutdown = \"\"\n",
	"[xen]\ncommand = \"/a\\\\b\"\n",
	"[xen]\ncommand = \"/a\"\r\n",
	"[xen]\n[xen]\n",
	"[xen]\ncommand = \"/a\"\ncommand = \"/b\"\n",
	"[xen.sub]\nx = 1\n",
	"[crash]\nkeep = 007\n",
	"[crash]\nkeep = \"7\"\n",
	"[xen]\ntimeout = 5\n",
	"[xen]\nbogus = \"x\"\n",
	"command = \"/a\"\n",
	"[xen]\ncommand = \"/a\"#c\n",
	"[xen]\ncommand = \"/a\" # \x01\n",
	"# \x7f\n",
	"[policy]\nsettle = \"1m\"\ndefault = 'ignore'\n",
}

// TestParseSimplePackaged checks that the configuration the package
// installs takes the fast path, as the shim reads it on every call.
func TestParseSimplePackaged(t *testing.T) {
	b, err := os.ReadFile("../../packaging/userdown.toml")
	if err != nil {
		t.Fatal(err)
	}
	c, ok := parseSimple(b)
	if !ok {
		t.Fatal("packaging/userdown.toml is outside the fast reader's subset")
	}
	want, err := parseTOML("p", b)
	if err != nil {
		t.Fatal(err)
	}
	want.Path = ""
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("fast reader vs TOML decoder (-toml +fast):\n%s", diff)
	}
}

// FuzzParseSimple checks that whatever parseSimple accepts, the full
// TOML decoder reads the same way: the fast path never changes what a
// configuration means.
func FuzzParseSimple(f *testing.F) {
	for _, s := range simpleSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := parseSimple(b)
		if !ok {
			return
		}
		full, err := parseTOML("f", b)
		if err != nil {
			if fast.Validate() == nil {
				t.Fatalf("fast reader accepted %q, TOML decoder: %v", b, err)
			}
			return
		}
		full.Path = ""
		if diff := cmp.Diff(full, fast); diff != "" {
			t.Fatalf("%q: fast reader vs TOML decoder (-toml +fast):\n%s", b, diff)
		}
	})
}
