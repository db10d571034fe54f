package hvconfig

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"ganeti-userdown/internal/trust/trusttest"
)

// TestRewriteFileRefusesNonRegular checks that only regular files are
// read: /dev/zero would grow the shim without end and a FIFO would block
// it for ever, both before `xl create` runs.
// Reference: issue 14, point 4; doc/design.md, "Shim" (never block a start).
func TestRewriteFileRefusesNonRegular(t *testing.T) {
	fifo := trusttest.Fifo(t, filepath.Join(t.TempDir(), "fifo"))
	for _, path := range []string{"/dev/zero", fifo} {
		err := trusttest.Prompt(t, "RewriteFile "+path, func() error {
			_, err := RewriteFile(path, defaultActions)
			return err
		})
		if err == nil || !strings.Contains(err.Error(), "not a regular file") || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: err = %v, want a not-a-regular-file error naming it", path, err)
		}
		if _, err := CheckFile(path, defaultActions); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("check %s: err = %v, want a not-a-regular-file error", path, err)
		}
	}
}

// TestRewriteFileRefusesLarge checks the size bound: a file larger than
// MaxFileSize is left alone with an error naming the bound.
func TestRewriteFileRefusesLarge(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big")
	src := strings.Repeat("\n", MaxFileSize+1)
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := RewriteFile(p, defaultActions)
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err = %v, want a size error", err)
	}
	if b, _ := os.ReadFile(p); string(b) != src {
		t.Errorf("file changed")
	}
}

// TestParseNestingBounded checks that deep nesting is a syntax error, not
// a stack overflow.
func TestParseNestingBounded(t *testing.T) {
	src := "x = " + strings.Repeat("[", 5<<20)
	_, err := Parse("deep", []byte(src))
	var se *SyntaxError
	if !errors.As(err, &se) || !strings.Contains(se.Msg, "nested deeper than") {
		t.Fatalf("err = %v, want a nesting SyntaxError", err)
	}
	ok := "x = " + strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth) + "\n"
	if _, err := Parse("ok", []byte(ok)); err != nil {
		t.Errorf("%d levels: %v", maxDepth, err)
	}
}

// TestParseMemoryProportional checks that parsing keeps memory in
// proportion to the file: a config of blank lines up to the size bound
// costs a small multiple of its size (it was 40 bytes of tokens per byte).
func TestParseMemoryProportional(t *testing.T) {
	src := []byte(strings.Repeat("\n", MaxFileSize-100) + "on_poweroff = 'preserve'\n")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	out, changed, err := Ensure("blank", src, defaultActions)
	runtime.ReadMemStats(&after)
	if err != nil || !changed || len(out) <= len(src) {
		t.Fatalf("Ensure: changed %v, err %v", changed, err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4*uint64(len(src)) {
		t.Errorf("Ensure of %d bytes allocated %d bytes, want at most 4 times the file", len(src), alloc)
	}
}
