package hvconfig

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"ganeti-userdown/internal/config"
)

var defaultActions = config.Default().Actions.ActionList()

// TestEnsure checks the rewrite on the cases a line-based rewriter gets
// wrong, with the exact bytes expected.
// Reference: design.md, "Why each part exists", 1: "With
// on_poweroff/on_crash set to preserve the dead domain stays in xl list".
func TestEnsure(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		actions []config.KeyValue
		want    string
	}{
		{
			name: "ganeti 2.10 destroy, on_shutdown appended",
			src:  "name = 'a'\non_poweroff = 'destroy'\non_reboot = 'restart'\non_crash = 'restart'\n",
			want: "name = 'a'\non_poweroff = 'preserve'\non_reboot = 'restart'\non_crash = 'preserve'\non_shutdown = 'preserve'\n",
		},
		{
			name: "already right is byte-identical",
			src:  "on_poweroff='preserve' # kept\non_crash = \"preserve\"\non_shutdown = 'preserve'",
			want: "on_poweroff='preserve' # kept\non_crash = \"preserve\"\non_shutdown = 'preserve'",
		},
		{
			name: "no final newline gets one before the appended statement",
			src:  "on_poweroff = 'preserve'\non_crash = 'preserve'\nextra = 'ro'",
			want: "on_poweroff = 'preserve'\non_crash = 'preserve'\nextra = 'ro'\non_shutdown = 'preserve'\n",
		},
		{
			name: "double-quoted file appends double quotes",
			src:  "name = \"a\"\nkernel = \"/k\"\non_poweroff = 'destroy'\n",
			want: "name = \"a\"\nkernel = \"/k\"\non_poweroff = 'preserve'\non_crash = \"preserve\"\non_shutdown = \"preserve\"\n",
		},
		{
			name: "keys in comments and strings are not statements",
			src:  "# on_poweroff = 'destroy'\nextra = 'on_crash = restart'\n",
			want: "# on_poweroff = 'destroy'\nextra = 'on_crash = restart'\non_poweroff = 'preserve'\non_crash = 'preserve'\non_shutdown = 'preserve'\n",
		},
		{
			name:    "duplicates all take the value",
			src:     "on_crash = 'restart'\nmemory = 1\non_crash = 'destroy' # again\n",
			actions: []config.KeyValue{{Key: "on_crash", Value: "preserve"}},
			want:    "on_crash = 'preserve'\nmemory = 1\non_crash = 'preserve' # again\n",
		},
		{
			name:    "several statements on a line",
			src:     "on_poweroff = 'destroy'; on_reboot = 'restart';on_crash='restart' ;\n",
			actions: []config.KeyValue{{Key: "on_poweroff", Value: "preserve"}, {Key: "on_crash", Value: "preserve"}},
			want:    "on_poweroff = 'preserve'; on_reboot = 'restart';on_crash='preserve' ;\n",
		},
		{
			name:    "list and number values become strings, += becomes =",
			src:     "on_poweroff = [\n 'x', # c\n]\non_crash\t+= 'y'\non_crash += 3\n",
			actions: []config.KeyValue{{Key: "on_poweroff", Value: "preserve"}, {Key: "on_crash", Value: "preserve"}},
			want:    "on_poweroff = 'preserve'\non_crash\t= 'preserve'\non_crash = 'preserve'\n",
		},
		{
			name:    "never touches on_reboot or on_watchdog",
			src:     "on_reboot = 'destroy'\non_watchdog = 'destroy'\non_soft_reset = 'destroy'\n",
			actions: []config.KeyValue{{Key: "on_poweroff", Value: "preserve"}},
			want:    "on_reboot = 'destroy'\non_watchdog = 'destroy'\non_soft_reset = 'destroy'\non_poweroff = 'preserve'\n",
		},
		{
			name:    "empty file",
			src:     "",
			actions: []config.KeyValue{{Key: "on_poweroff", Value: "preserve"}},
			want:    "on_poweroff = 'preserve'\n",
		},
		{
			name:    "value needing escapes keeps the statement's quote",
			src:     "a = \"x\"\n",
			actions: []config.KeyValue{{Key: "a", Value: "it's \"q\"\\\n"}},
			want:    "a = \"it's \\\"q\\\"\\\\\\n\"\n",
		},
		{
			name:    "octal escape is dropped, so the value differs and is rewritten",
			src:     "on_poweroff = 'pres\\145rve'\n",
			actions: []config.KeyValue{{Key: "on_poweroff", Value: "preserve"}},
			want:    "on_poweroff = 'preserve'\n",
		},
		{
			name:    "no actions",
			src:     "a = 1\n",
			actions: []config.KeyValue{},
			want:    "a = 1\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			actions := tt.actions
			if actions == nil {
				actions = defaultActions
			}
			out, changed, err := Ensure("t.cfg", []byte(tt.src), actions)
			if err != nil {
				t.Fatalf("Ensure: %v", err)
			}
			if diff := cmp.Diff(tt.want, string(out)); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
			if changed != (tt.want != tt.src) {
				t.Errorf("changed = %v, want %v", changed, tt.want != tt.src)
			}
			again, changed2, err := Ensure("t.cfg", out, actions)
			if err != nil || changed2 || string(again) != string(out) {
				t.Errorf("second Ensure: changed=%v err=%v (not idempotent)\n%s", changed2, err, again)
			}
			f, err := Parse("t.cfg", out)
			if err != nil {
				t.Fatalf("output does not parse: %v", err)
			}
			for _, a := range actions {
				if v, ok := f.Get(a.Key); !ok || v.Kind != KindString || v.String != a.Value {
					t.Errorf("Get(%s) = %#v, %v; want %q", a.Key, v, ok, a.Value)
				}
			}
		})
	}
}

// TestEnsureOctalAlreadyRight: a value that Xen decodes to the wanted
// text counts as right even when written with an escape.
func TestEnsureOctalAlreadyRight(t *testing.T) {
	// 'pre\012serve' decodes to "preserve": the octal escape is dropped.
	src := "on_poweroff = 'pre\\012serve'\n"
	out, changed, err := Ensure("t", []byte(src), []config.KeyValue{{Key: "on_poweroff", Value: "preserve"}})
	if err != nil || changed || string(out) != src {
		t.Errorf("Ensure = %q, %v, %v; want the input unchanged", out, changed, err)
	}
}

// TestEnsureRejects: a config Xen rejects, or actions that cannot be
// written, give an error and no output.
// Reference: design.md: "whatever Xen rejects, we reject too, without
// touching the file."
func TestEnsureRejects(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		actions []config.KeyValue
		want    string
	}{
		{"crlf", "on_poweroff = 'destroy'\r\n", defaultActions, "t.cfg:1:24: carriage return"},
		{"python", "vif = ['a'] + ['b']\n", defaultActions, "t.cfg:1:13: unexpected '+'"},
		{"bad key", "a = 1\n", []config.KeyValue{{Key: "On_poweroff", Value: "x"}}, `action key "On_poweroff"`},
		{"nul value", "a = 1\n", []config.KeyValue{{Key: "a", Value: "x\x00"}}, "NUL"},
		{"twice", "a = 1\n", []config.KeyValue{{Key: "a", Value: "x"}, {Key: "a", Value: "y"}}, "given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, changed, err := Ensure("t.cfg", []byte(tt.src), tt.actions)
			if err == nil || out != nil || changed {
				t.Fatalf("Ensure = %q, %v, %v; want an error", out, changed, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

// TestRewriteFile checks the file operations: rewritten once, then left
// alone; mode kept; a bad file untouched; a symlink's target rewritten.
// Reference: design.md, "Shim": "if CFG cannot be parsed it logs, leaves
// CFG alone".
func TestRewriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "inst1.example.com")
	src := "name = 'inst1.example.com'\non_poweroff = 'destroy'\non_crash = 'restart'\n"
	if err := os.WriteFile(path, []byte(src), 0o640); err != nil {
		t.Fatal(err)
	}
	missing, err := CheckFile(path, defaultActions)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(defaultActions, missing); diff != "" {
		t.Errorf("CheckFile before (-want +got):\n%s", diff)
	}
	changed, err := RewriteFile(path, defaultActions)
	if err != nil || !changed {
		t.Fatalf("RewriteFile = %v, %v; want changed", changed, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", fi.Mode().Perm())
	}
	var before syscall.Stat_t
	if err := syscall.Stat(path, &before); err != nil {
		t.Fatal(err)
	}
	changed, err = RewriteFile(path, defaultActions)
	if err != nil || changed {
		t.Fatalf("second RewriteFile = %v, %v; want unchanged", changed, err)
	}
	var after syscall.Stat_t
	if err := syscall.Stat(path, &after); err != nil {
		t.Fatal(err)
	}
	if before.Ino != after.Ino {
		t.Errorf("unchanged file was replaced (inode %d -> %d)", before.Ino, after.Ino)
	}
	if missing, err := CheckFile(path, defaultActions); err != nil || len(missing) != 0 {
		t.Errorf("CheckFile after = %v, %v; want nothing missing", missing, err)
	}

	link := filepath.Join(dir, "link")
	target := filepath.Join(dir, "target.cfg")
	if err := os.WriteFile(target, []byte("on_poweroff = 'destroy'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("target.cfg", link); err != nil {
		t.Fatal(err)
	}
	if changed, err := RewriteFile(link, defaultActions); err != nil || !changed {
		t.Fatalf("RewriteFile(link) = %v, %v", changed, err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("link is no longer a symlink: %v %v", fi.Mode(), err)
	}
	if b, _ := os.ReadFile(target); !strings.Contains(string(b), "on_poweroff = 'preserve'") {
		t.Errorf("target not rewritten:\n%s", b)
	}

	bad := filepath.Join(dir, "bad.cfg")
	badSrc := "on_poweroff = 'destroy'\r\n"
	if err := os.WriteFile(bad, []byte(badSrc), 0o644); err != nil {
		t.Fatal(err)
	}
	changed, err = RewriteFile(bad, defaultActions)
	var se *SyntaxError
	if changed || !errors.As(err, &se) || se.Line != 1 {
		t.Errorf("RewriteFile(bad) = %v, %v; want a syntax error on line 1", changed, err)
	}
	if b, _ := os.ReadFile(bad); string(b) != badSrc {
		t.Errorf("bad file was modified: %q", b)
	}
	if _, err := CheckFile(bad, defaultActions); !errors.As(err, &se) {
		t.Errorf("CheckFile(bad) = %v; want a syntax error", err)
	}
	if _, err := RewriteFile(filepath.Join(dir, "absent"), defaultActions); err == nil || !strings.Contains(err.Error(), "absent") {
		t.Errorf("RewriteFile(absent) = %v; want an error naming the file", err)
	}
}
