package debtest

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"ganeti-userdown/internal/config"
	"ganeti-userdown/internal/doctor"
)

func readConffile(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repo(t), "packaging/userdown.toml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestConffileAsShipped parses the configuration the package installs: the
// defaults, except that the toolstack is the diverted one.
//
// Reference: design.md, "Configuration": command = "/usr/sbin/xl", "the
// package sets /usr/lib/ganeti-userdown/real/xl".
func TestConffileAsShipped(t *testing.T) {
	got, err := config.Parse("userdown.toml", []byte(readConffile(t)))
	if err != nil {
		t.Fatal(err)
	}
	want := config.Default()
	want.Xen.Command = "/usr/lib/ganeti-userdown/real/xl"
	want.Path = "userdown.toml"
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("shipped configuration (-want +got):\n%s", d)
	}
}

var commentedKey = regexp.MustCompile(`^#([a-z_]+) = (.*)$`)

// TestConffileCommentsEveryDefault uncomments every "#key = value" line:
// the result must be exactly the built-in defaults, and every key the
// configuration knows must be there.
func TestConffileCommentsEveryDefault(t *testing.T) {
	var lines []string
	seen := map[string]bool{}
	section := ""
	for _, l := range strings.Split(readConffile(t), "\n") {
		if strings.HasPrefix(l, "[") {
			section = strings.Trim(l, "[]")
		}
		if m := commentedKey.FindStringSubmatch(l); m != nil {
			l = strings.TrimPrefix(l, "#")
			seen[section+"."+m[1]] = true
		} else if k, _, ok := strings.Cut(l, " = "); ok && !strings.HasPrefix(l, "#") {
			seen[section+"."+k] = true
			if section == "xen" && k == "command" {
				l = `command = "/usr/sbin/xl"` // the built-in default, shown in its comment
			}
		}
		lines = append(lines, l)
	}
	got, err := config.Parse("uncommented.toml", []byte(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	want := config.Default()
	want.Path = "uncommented.toml"
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("uncommented defaults differ from config.Default (-want +got):\n%s", d)
	}

	var all []string
	ct := reflect.TypeOf(config.Config{})
	for i := 0; i < ct.NumField(); i++ {
		sec := ct.Field(i).Tag.Get("toml")
		if sec == "" || sec == "-" {
			continue
		}
		st := ct.Field(i).Type
		for j := 0; j < st.NumField(); j++ {
			if k := st.Field(j).Tag.Get("toml"); k != "" && k != "-" {
				all = append(all, sec+"."+k)
			}
		}
	}
	var missing []string
	for _, k := range all {
		if !seen[k] {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		t.Errorf("keys of internal/config missing from packaging/userdown.toml: %s", strings.Join(missing, ", "))
	}
	if len(seen) != len(all) {
		t.Errorf("packaging/userdown.toml has %d keys, internal/config %d", len(seen), len(all))
	}
}

// TestHookDirsAgreeWithDoctor: the directories the package tests expect
// (from the design's table) are the ones doctor checks.
func TestHookDirsAgreeWithDoctor(t *testing.T) {
	if d := cmp.Diff(hookDirs, doctor.HookDirs); d != "" {
		t.Errorf("hooks directories (-package tests +doctor):\n%s", d)
	}
}
