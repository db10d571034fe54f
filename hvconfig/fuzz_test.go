package hvconfig

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"ganeti-userdown/internal/config"
)

// addCorpus seeds a fuzz target with the config corpus (the seeds under
// testdata/fuzz are added by the fuzzing engine itself).
func addCorpus(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(corpusDir, "*.cfg"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
}

// FuzzParse: Parse never panics; an accepted file's tokens cover every
// byte, in order, with only blanks between them; statements point at
// their own bytes; every key Keys lists has a value.
func FuzzParse(f *testing.F) {
	addCorpus(f)
	f.Fuzz(func(t *testing.T, src []byte) {
		file, err := Parse("fuzz", src)
		if err != nil {
			if _, ok := err.(*SyntaxError); !ok {
				t.Fatalf("error %v is %T, want *SyntaxError", err, err)
			}
			return
		}
		prev := 0
		for _, tok := range file.Tokens() {
			if tok.Start < prev || tok.End < tok.Start || tok.End > len(src) {
				t.Fatalf("token %+v out of order (previous end %d, len %d)", tok, prev, len(src))
			}
			for _, c := range src[prev:tok.Start] {
				if c != ' ' && c != '\t' {
					t.Fatalf("byte %q between tokens at %d", c, prev)
				}
			}
			prev = tok.End
		}
		if prev != len(src) {
			t.Fatalf("tokens end at %d, source has %d bytes", prev, len(src))
		}
		for _, st := range file.Statements() {
			if string(src[st.KeyStart:st.KeyStart+len(st.Key)]) != st.Key ||
				!(st.KeyStart < st.OpStart && st.OpStart < st.OpEnd && st.OpEnd <= st.ValueStart && st.ValueStart < st.ValueEnd) {
				t.Fatalf("statement offsets %+v", st)
			}
		}
		for _, k := range file.Keys() {
			if _, ok := file.Get(k); !ok {
				t.Fatalf("key %q listed but has no value", k)
			}
		}
	})
}

// FuzzEnsure checks Ensure's properties on any input: it never panics;
// on a file Parse accepts it succeeds, its output parses, carries the
// actions and leaves every other key's value as it was; it is idempotent;
// and the bytes outside the statements it edits are unchanged.
// Reference: design.md, "Why each part exists", 2: the shim "rewrites the
// config given to create"; the rewrite must be lossless and idempotent.
func FuzzEnsure(f *testing.F) {
	addCorpus(f)
	actions := config.Default().Actions.ActionList()
	f.Fuzz(func(t *testing.T, src []byte) {
		out, changed, err := Ensure("fuzz", src, actions)
		before, perr := Parse("fuzz", src)
		if (err == nil) != (perr == nil) {
			t.Fatalf("Ensure error %v, Parse error %v", err, perr)
		}
		if err != nil {
			return
		}
		if changed == bytes.Equal(out, src) {
			t.Fatalf("changed = %v but output equal = %v", changed, bytes.Equal(out, src))
		}
		after, err := Parse("fuzz", out)
		if err != nil {
			t.Fatalf("output does not parse: %v\n%q", err, out)
		}
		isAction := func(k string) bool {
			return slices.ContainsFunc(actions, func(a config.KeyValue) bool { return a.Key == k })
		}
		for _, a := range actions {
			if v, ok := after.Get(a.Key); !ok || v.Kind != KindString || v.String != a.Value {
				t.Fatalf("after Ensure %s = %#v, %v", a.Key, v, ok)
			}
		}
		for _, k := range before.Keys() {
			if isAction(k) {
				continue
			}
			v0, _ := before.Get(k)
			v1, ok := after.Get(k)
			if !ok || !cmp.Equal(v0, v1) {
				t.Fatalf("key %s changed: %#v -> %#v", k, v0, v1)
			}
		}
		again, changed2, err := Ensure("fuzz", out, actions)
		if err != nil || changed2 || !bytes.Equal(again, out) {
			t.Fatalf("not idempotent: changed=%v err=%v", changed2, err)
		}
		// Lossless: blank out the action statements of both; what remains
		// of the input must be a prefix of what remains of the output,
		// followed only by the appended statements.
		m0 := maskStatements(before, isAction)
		m1 := maskStatements(after, isAction)
		if !bytes.HasPrefix(m1, m0) {
			t.Fatalf("bytes outside edited statements changed:\n%q\n%q", m0, m1)
		}
		for _, c := range m1[len(m0):] {
			if c != '\n' && c != 0 {
				t.Fatalf("output adds more than action statements: %q", m1[len(m0):])
			}
		}
	})
}

// maskStatements returns the source with each statement whose key is
// selected replaced by one NUL byte (NUL never appears in a file that
// parses).
func maskStatements(f *File, selected func(string) bool) []byte {
	src := f.Bytes()
	out := make([]byte, 0, len(src))
	prev := 0
	for _, st := range f.Statements() {
		if !selected(st.Key) {
			continue
		}
		out = append(out, src[prev:st.KeyStart]...)
		out = append(out, 0)
		prev = st.ValueEnd
	}
	return append(out, src[prev:]...)
}

// FuzzAgainstLibxlutil compares Parse with Xen's own parser on any input:
// the same verdict and, for accepted inputs, the same values. Inputs with
// a NUL byte are skipped: Parse rejects NUL everywhere on purpose (Xen's
// C strings cannot carry it; libxlutil accepts it only inside comments).
// Reference: design.md: "whatever Xen rejects, we reject too".
func FuzzAgainstLibxlutil(f *testing.F) {
	addCorpus(f)
	f.Fuzz(func(t *testing.T, src []byte) {
		if bytes.IndexByte(src, 0) >= 0 {
			return
		}
		path := filepath.Join(t.TempDir(), "in.cfg")
		if err := os.WriteFile(path, src, 0o644); err != nil {
			t.Fatal(err)
		}
		file, perr := Parse("fuzz", src)
		keys := []string{"a"}
		if perr == nil {
			keys = file.Keys()
		}
		xenOK, xenValues, report := oracleRead(t, path, keys)
		var se *SyntaxError
		if xenOK && errors.As(perr, &se) && se.lexical && se.Offset == len(src)-1 {
			// libxlutil's lexer drops a stray last byte without a word
			// (see Parse); we reject it on purpose.
			return
		}
		if xenOK != (perr == nil) {
			t.Fatalf("libxlutil accepted=%v (%s), Parse: %v\ninput %q", xenOK, report, perr, src)
		}
		if xenOK {
			if diff := cmp.Diff(xenValues, ourValues(file, keys)); diff != "" {
				t.Fatalf("values differ (-xen +ours):\n%s\ninput %q", diff, src)
			}
		}
	})
}
