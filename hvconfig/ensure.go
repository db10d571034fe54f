package hvconfig

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"ganeti-userdown/internal/atomicfile"
	"ganeti-userdown/internal/config"
	"ganeti-userdown/internal/trust"
)

// Ensure returns src with every action key set to its value. Every
// existing assignment of an action key takes the new value (Xen reads the
// last one, so all must agree; a `+=` becomes `=`); a key that is not
// assigned at all is appended as one statement at the end, quoted in the
// file's own style. Every other byte stays as it was, and a file that
// already carries the actions comes back unchanged (out is then src
// itself). changed reports whether the bytes differ. A config Xen rejects
// is a *SyntaxError and nothing is produced.
func Ensure(name string, src []byte, actions []config.KeyValue) (out []byte, changed bool, err error) {
	if err := checkActions(actions); err != nil {
		return nil, false, fmt.Errorf("%s: %w", name, err)
	}
	f, err := Parse(name, src)
	if err != nil {
		return nil, false, err
	}
	return f.ensure(actions)
}

// Missing returns the actions the file does not carry yet: those whose
// key is not assigned, or has an assignment that is not `key = 'value'`
// with exactly that value. Ensure changes a file exactly when Missing is
// not empty.
func (f *File) Missing(actions []config.KeyValue) []config.KeyValue {
	var missing []config.KeyValue
	for _, a := range actions {
		found, ok := false, true
		for i := range f.stmts {
			st := &f.stmts[i]
			if st.Key != a.Key {
				continue
			}
			found = true
			if !hasValue(st, a.Value) {
				ok = false
				break
			}
		}
		if !found || !ok {
			missing = append(missing, a)
		}
	}
	return missing
}

func hasValue(st *Statement, v string) bool {
	return st.Op == OpAssign && st.Value.Kind == KindString && st.Value.String == v
}

type edit struct {
	start, end int
	text       string
}

func (f *File) ensure(actions []config.KeyValue) ([]byte, bool, error) {
	if len(f.Missing(actions)) == 0 {
		return f.src, false, nil
	}
	style := f.QuoteStyle()
	var edits []edit
	var tail []byte
	for _, a := range actions {
		found := false
		for i := range f.stmts {
			st := &f.stmts[i]
			if st.Key != a.Key {
				continue
			}
			found = true
			if hasValue(st, a.Value) {
				continue
			}
			q := style
			if st.Value.Kind == KindString {
				q = st.Value.Quote
			}
			if st.Op != OpAssign {
				edits = append(edits, edit{st.OpStart, st.OpEnd, "="})
			}
			edits = append(edits, edit{st.ValueStart, st.ValueEnd, Quote(a.Value, q)})
		}
		if !found {
			tail = append(tail, a.Key...)
			tail = append(tail, " = "...)
			tail = append(tail, Quote(a.Value, style)...)
			tail = append(tail, '\n')
		}
	}
	slices.SortFunc(edits, func(a, b edit) int { return a.start - b.start })

	size := len(f.src) + len(tail) + 1
	for _, e := range edits {
		size += len(e.text) - (e.end - e.start)
	}
	out := make([]byte, 0, size)
	prev := 0
	for _, e := range edits {
		out = append(out, f.src[prev:e.start]...)
		out = append(out, e.text...)
		prev = e.end
	}
	out = append(out, f.src[prev:]...)
	if len(tail) > 0 {
		if len(out) > 0 && out[len(out)-1] != '\n' {
			out = append(out, '\n')
		}
		out = append(out, tail...)
	}

	// What we write must be what Xen reads as intended: check it.
	g, err := Parse(f.name, out)
	if err != nil {
		return nil, false, fmt.Errorf("%s: rewritten config does not parse (please report this): %w", f.name, err)
	}
	if m := g.Missing(actions); len(m) > 0 {
		return nil, false, fmt.Errorf("%s: rewritten config still lacks %s (please report this)", f.name, m[0].Key)
	}
	return out, !bytes.Equal(out, f.src), nil
}

// QuoteStyle returns the quote character most strings of the file use:
// a double quote when those are in the majority, else a single quote (as
// Ganeti writes).
func (f *File) QuoteStyle() byte {
	if f.doubleQuoted > f.singleQuoted {
		return '"'
	}
	return '\''
}

// Quote returns v as a string literal of Xen's grammar in quote q (a
// single or a double quote), escaping backslashes, the quote and the control characters that
// have an escape. v must not contain a NUL byte, which Xen's strings
// cannot carry.
func Quote(v string, q byte) string {
	var b strings.Builder
	b.Grow(len(v) + 2)
	b.WriteByte(q)
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\':
			b.WriteString(`\\`)
		case q:
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\a':
			b.WriteString(`\a`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\v':
			b.WriteString(`\v`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte(q)
	return b.String()
}

// checkActions rejects actions that cannot be written: keys outside Xen's
// key syntax, NUL bytes in values, a key given twice.
func checkActions(actions []config.KeyValue) error {
	seen := make(map[string]bool, len(actions))
	for _, a := range actions {
		if !validKey(a.Key) {
			return fmt.Errorf("action key %q is not a Xen config key ([a-z][._0-9a-z]*)", a.Key)
		}
		if strings.IndexByte(a.Value, 0) >= 0 {
			return fmt.Errorf("action %s: value contains a NUL byte", a.Key)
		}
		if seen[a.Key] {
			return fmt.Errorf("action key %s given twice", a.Key)
		}
		seen[a.Key] = true
	}
	return nil
}

func validKey(k string) bool {
	if k == "" || !isIdentStart(k[0]) {
		return false
	}
	for i := 1; i < len(k); i++ {
		if !isIdentByte(k[i]) {
			return false
		}
	}
	return true
}

// RewriteFile applies Ensure to the file at path and, only when that
// changes it, replaces the file atomically (the file keeps its mode and
// owner; a crash leaves the old or the new content). A symbolic link is
// followed and its target rewritten. A config Xen rejects is left alone
// and the *SyntaxError returned.
func RewriteFile(path string, actions []config.KeyValue) (changed bool, err error) {
	real, src, err := readFile(path)
	if err != nil {
		return false, fmt.Errorf("rewrite %s: %w", path, err)
	}
	out, changed, err := Ensure(path, src, actions)
	if err != nil || !changed {
		return false, err
	}
	if err := atomicfile.WriteFile(real, out, 0o644); err != nil {
		return false, fmt.Errorf("rewrite %s: %w", path, err)
	}
	return true, nil
}

// readFile reads the domain config at path (links followed): a regular
// file of at most MaxFileSize bytes, opened without blocking.
func readFile(path string) (real string, src []byte, err error) {
	f, err := trust.ReadRegular(path, MaxFileSize)
	if err != nil {
		return "", nil, fmt.Errorf("%w: left alone", err)
	}
	return f.Path, f.Data, nil
}

// CheckFile reports which actions the file at path does not carry yet
// (see (*File).Missing); an empty result means RewriteFile would leave the
// file unchanged.
func CheckFile(path string, actions []config.KeyValue) (missing []config.KeyValue, err error) {
	if err := checkActions(actions); err != nil {
		return nil, fmt.Errorf("check %s: %w", path, err)
	}
	_, src, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("check %s: %w", path, err)
	}
	f, err := Parse(path, src)
	if err != nil {
		return nil, err
	}
	return f.Missing(actions), nil
}
