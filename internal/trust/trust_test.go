package trust

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ganeti-userdown/internal/trust/trusttest"
)

// TestCheck covers each way a file can be unsafe for root, and links
// resolved before the check.
// Reference: issue 14, point 2 (root trusts only root's files).
func TestCheck(t *testing.T) {
	trusttest.RequireRoot(t)
	base := t.TempDir()
	mk := func(rel string, mode fs.FileMode, uid int) string {
		p := filepath.Join(base, rel)
		if strings.HasSuffix(rel, "/") {
			return trusttest.Dir(t, p, mode, uid)
		}
		return trusttest.File(t, p, "x", mode, uid)
	}
	link := func(rel, target string) string {
		p := filepath.Join(base, rel)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := mk("good/conf", 0o644, 0)
	otherOwned := mk("good/other", 0o600, trusttest.Nobody)
	groupWritable := mk("good/gw", 0o664, 0)
	mk("open/", 0o777, 0)
	inOpenDir := mk("open/conf", 0o644, 0)
	mk("userdir/", 0o755, trusttest.Nobody)
	inUserDir := mk("userdir/conf", 0o644, 0)
	mk("sticky/", fs.ModeSticky|0o777, 0)
	inSticky := mk("sticky/conf", 0o644, 0)
	toOther := link("good/link-to-other", otherOwned)
	toGood := link("good/link-to-good", "conf")
	linkInOpen := link("open/link", good)

	for _, tc := range []struct {
		name, path, culprit, resolved string
	}{
		{"root's file in root's dirs", good, "", good},
		{"owned by another user", otherOwned, otherOwned, ""},
		{"group-writable", groupWritable, groupWritable, ""},
		{"in a directory others can write", inOpenDir, filepath.Join(base, "open"), ""},
		{"in another user's directory", inUserDir, filepath.Join(base, "userdir"), ""},
		{"in a sticky directory of root's", inSticky, "", inSticky},
		{"a link to another user's 0600 file", toOther, otherOwned, ""},
		{"a relative link to root's file", toGood, "", good},
		{"a link others can replace", linkInOpen, filepath.Join(base, "open"), ""},
	} {
		got, err := Check(tc.path)
		if tc.culprit == "" {
			if err != nil || got != tc.resolved {
				t.Errorf("%s: Check = %q, %v; want %q", tc.name, got, err, tc.resolved)
			}
			continue
		}
		var te *Error
		if !errors.As(err, &te) || te.Culprit != tc.culprit {
			t.Errorf("%s: err = %v, want a refusal naming %s", tc.name, err, tc.culprit)
			continue
		}
		for _, want := range []string{tc.culprit, "uid ", "mode 0"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %q does not say %q", tc.name, err, want)
			}
		}
	}
	if _, err := Check(filepath.Join(base, "good/missing")); !errors.Is(err, fs.ErrNotExist) || IsRefused(err) {
		t.Errorf("missing file: err = %v, want not-exist", err)
	}
}
