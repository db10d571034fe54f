// Package hvconfig reads and rewrites Xen domain configuration files (the
// files Ganeti writes to /etc/xen/<instance> and hands to `xl create`).
//
// It follows the grammar of Xen's own config parser, libxlutil: statements
// `key = value` or `key += value`, ended by a newline or ';'; keys
// [a-z][._0-9a-z]*; values are '…' or "…" strings with backslash escapes,
// numbers, or [lists] that may span lines and nest; '#' starts a comment
// that runs to the end of the line. The last assignment of a key wins, and
// `+=` appends to the value before it. Whatever libxlutil rejects is
// rejected here too (a carriage return outside comments and strings, a
// byte-order mark, a final comment without a newline, \x escapes, Python),
// with a *SyntaxError naming the line and column. xm configs are Python, of
// which Ganeti writes only this same subset.
//
// The model is lossless: a File keeps its source bytes and the offsets of
// every token and statement, so Ensure changes only the values it must and
// leaves every other byte, comments and layout included, as it was.
package hvconfig

import (
	"fmt"
	"strings"
)

// ValueKind says what a Value holds.
type ValueKind uint8

// The kinds of value.
const (
	KindString ValueKind = iota + 1 // a quoted string, unescaped
	KindNumber                      // a number, as written
	KindList                        // a [list] of values
)

// String names the kind.
func (k ValueKind) String() string {
	switch k {
	case KindString:
		return "string"
	case KindNumber:
		return "number"
	case KindList:
		return "list"
	}
	return fmt.Sprintf("ValueKind(%d)", uint8(k))
}

// Value is the value of a key: a string (unquoted and unescaped), a number
// (its text as written; Xen treats numbers as strings too) or a list of
// values.
type Value struct {
	Kind ValueKind
	// String is the value of a string or number.
	String string
	// List holds the items of a list.
	List []Value
	// Quote is the quote character of a string as written in the file
	// (a single or a double quote); 0 for numbers, lists and values built by `+=`.
	Quote byte
}

// Strings returns the items of a list of strings or numbers, or the value
// itself as a one-item slice; nested lists are left out.
func (v Value) Strings() []string {
	if v.Kind != KindList {
		return []string{v.String}
	}
	out := make([]string, 0, len(v.List))
	for _, it := range v.List {
		if it.Kind != KindList {
			out = append(out, it.String)
		}
	}
	return out
}

// Op is the operator of an assignment.
type Op uint8

// The assignment operators.
const (
	OpAssign Op = iota + 1 // key = value
	OpAppend               // key += value
)

// String returns the operator as written.
func (o Op) String() string {
	if o == OpAppend {
		return "+="
	}
	return "="
}

// Statement is one assignment, with the offsets of its parts in the
// source: src[KeyStart:ValueEnd] is the whole assignment, without the
// newline or ';' that ends it.
type Statement struct {
	Key   string
	Op    Op
	Value Value
	// Line and Col locate the key (1-based; Col counts bytes).
	Line, Col int
	// KeyStart, OpStart, OpEnd, ValueStart and ValueEnd are byte
	// offsets into the source.
	KeyStart, OpStart, OpEnd, ValueStart, ValueEnd int
}

// File is a parsed domain config. It keeps the source bytes it was parsed
// from; the parse methods never change them.
type File struct {
	name  string
	src   []byte
	stmts []Statement
	// singleQuoted and doubleQuoted count the string tokens by quote.
	singleQuoted, doubleQuoted int
	// values holds each key's effective value (last assignment, with
	// `+=` applied), as libxlutil computes it.
	values map[string]Value
	// keys lists the keys in order of first appearance.
	keys []string
}

// Name returns the name given to Parse.
func (f *File) Name() string { return f.name }

// Bytes returns the source the file was parsed from. The caller must not
// modify it.
func (f *File) Bytes() []byte { return f.src }

// Tokens returns every token of the file in order, the final TokEOF
// included. They are lexed again on each call (Parse keeps none).
func (f *File) Tokens() []Token {
	l := lexer{name: f.name, src: f.src, line: 1}
	var toks []Token
	for {
		t, err := l.next()
		if err != nil {
			return toks // not reached: Parse accepted the file
		}
		toks = append(toks, t)
		if t.Kind == TokEOF {
			return toks
		}
	}
}

// Statements returns every assignment in file order.
func (f *File) Statements() []Statement { return f.stmts }

// Keys returns every key that is assigned, in order of first appearance.
func (f *File) Keys() []string { return f.keys }

// Get returns the value of key as Xen sees it: the value of the last
// assignment, with each `+=` appending to the value before it. Strings are
// unquoted and unescaped, numbers are as written, lists hold their items.
func (f *File) Get(key string) (Value, bool) {
	v, ok := f.values[key]
	return v, ok
}

// SyntaxError is a config that Xen's grammar rejects. Line and Col
// (1-based, Col in bytes) locate the first offending byte; Offset is its
// byte offset in the file.
type SyntaxError struct {
	Name      string
	Line, Col int
	Offset    int
	Msg       string

	// lexical marks errors of the lexer (a byte no token accepts), as
	// opposed to the grammar.
	lexical bool
}

// Error returns "name:line:col: msg".
func (e *SyntaxError) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.Name, e.Line, e.Col, e.Msg)
}

// concat returns prev followed by add, as `key += add` computes it: both
// must be lists, or both strings or numbers.
func concat(prev, add Value) (Value, bool) {
	if (prev.Kind == KindList) != (add.Kind == KindList) {
		return Value{}, false
	}
	if add.Kind == KindList {
		items := make([]Value, 0, len(prev.List)+len(add.List))
		items = append(items, prev.List...)
		items = append(items, add.List...)
		return Value{Kind: KindList, List: items}, true
	}
	kind := KindString
	if prev.Kind == KindNumber && add.Kind == KindNumber {
		kind = KindNumber
	}
	return Value{Kind: kind, String: prev.String + add.String}, true
}

// GoString renders a value compactly for messages and test failures.
func (v Value) GoString() string {
	var b strings.Builder
	v.format(&b)
	return b.String()
}

func (v Value) format(b *strings.Builder) {
	switch v.Kind {
	case KindList:
		b.WriteByte('[')
		for i, it := range v.List {
			if i > 0 {
				b.WriteString(", ")
			}
			it.format(b)
		}
		b.WriteByte(']')
	case KindNumber:
		b.WriteString(v.String)
	default:
		fmt.Fprintf(b, "%q", v.String)
	}
}

// MaxFileSize bounds the domain configs read and rewritten: far above any
// real one (Ganeti's are under 2 KiB), far below what would slow a start.
// A larger file is left alone; the toolstack then reads it as it is.
const MaxFileSize = 1 << 20

// maxDepth bounds the nesting of lists (real configs nest one or two
// levels); deeper input is a *SyntaxError rather than ever deeper
// recursion.
const maxDepth = 100
