package atomicfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReplaceKeepsMode(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "inst1")
	if err := os.WriteFile(p, []byte("old"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	fi, _ := os.Stat(p)
	if string(b) != "new" || fi.Mode().Perm() != 0o640 {
		t.Errorf("got %q mode %v, want \"new\" mode 0640", b, fi.Mode().Perm())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("temporary file left behind: %v", ents)
	}
}

func TestCreateUsesPerm(t *testing.T) {
	p := filepath.Join(t.TempDir(), "new")
	if err := WriteFile(p, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("stat: %v %v", err, fi.Mode())
	}
}

func TestKeepsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("keeping another owner needs root: run the tests as root (CI does)")
	}
	p := filepath.Join(t.TempDir(), "owned")
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, 4242, 4343); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	uid, gid := ownerOf(t, p)
	if uid != 4242 || gid != 4343 {
		t.Errorf("owner %d:%d, want 4242:4343", uid, gid)
	}
}

func TestRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	if err := WriteFile(dir, []byte("x"), 0o600); err == nil {
		t.Fatal("replaced a directory")
	}
}

// A symbolic link planted where the file is to be written is refused,
// and its target is left untouched: a writer inside a directory it
// trusts never follows a link out of it.
func TestRefusesSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.WriteFile(target, []byte("theirs"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "observations.json")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for name, write := range map[string]func() error{
		"WriteFile":   func() error { return WriteFile(link, []byte("ours"), 0o600) },
		"WriteFileAt": func() error { return WriteFileAt(d, "observations.json", []byte("ours"), 0o600) },
	} {
		err := write()
		if err == nil || !strings.Contains(err.Error(), "symbolic link") {
			t.Errorf("%s over a symlink: err = %v, want a refusal naming the link", name, err)
		}
		if b, _ := os.ReadFile(target); string(b) != "theirs" {
			t.Errorf("%s wrote through the link: target now %q", name, b)
		}
		if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s replaced the link: %v %v", name, fi, err)
		}
		ents, _ := os.ReadDir(dir)
		if len(ents) != 1 {
			t.Errorf("%s left files behind: %v", name, ents)
		}
	}
}

func TestWriteFileAt(t *testing.T) {
	dir := t.TempDir()
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := WriteFileAt(d, "a", []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "a"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAt(d, "a", []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "a"))
	fi, _ := os.Stat(filepath.Join(dir, "a"))
	if string(b) != "two" || fi.Mode().Perm() != 0o640 {
		t.Errorf("got %q mode %v, want \"two\" mode 0640", b, fi.Mode().Perm())
	}
	for _, bad := range []string{"", ".", "..", "x/y"} {
		if err := WriteFileAt(d, bad, []byte("x"), 0o600); err == nil {
			t.Errorf("WriteFileAt(%q) succeeded, want a refusal of a name that is not one path element", bad)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("files left behind: %v", ents)
	}
}
