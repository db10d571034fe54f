// Package plaintoml reads the plain subset of TOML that ganeti-userdown's
// configuration files use: comments, [section] headers, and `key =
// "string"`, `key = 'literal'` or `key = 123`, each on its own line. It
// exists for speed (the toolstack shim reads the configuration on every
// xl call) and imports almost nothing; anything outside the subset is
// left to a full TOML decoder.
package plaintoml

import (
	"bytes"
	"strconv"
	"unicode/utf8"
)

// Value is the value of one key: a string or an integer.
type Value struct {
	String string
	Int    int64
	IsInt  bool
}

// Scan calls f with the section, key and value of every assignment of b,
// in order, and with the section and an empty key for every [section]
// header. It returns false as soon as b is found outside the subset
// (a key outside a section, an escape in a string, a repeated section
// or key, control characters, invalid UTF-8, anything else TOML has) or f
// returns false; f may have been called for the lines before.
func Scan(b []byte, f func(section, key string, v Value) bool) bool {
	if !utf8.Valid(b) {
		return false
	}
	seen := map[string]bool{}
	section := ""
	for len(b) > 0 {
		var line []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			line, b = b, nil
		}
		line = trimBlank(line)
		switch {
		case len(line) == 0:
			continue
		case line[0] == '#':
			if !restIsComment(line) {
				return false
			}
			continue
		case line[0] == '[':
			end := bytes.IndexByte(line, ']')
			if end < 0 || !restIsComment(line[end+1:]) {
				return false
			}
			name := string(trimBlank(line[1:end]))
			if !bareKey(name) || seen["["+name] {
				return false
			}
			seen["["+name] = true
			section = name
			if !f(section, "", Value{}) {
				return false
			}
			continue
		}
		eq := bytes.IndexByte(line, '=')
		if eq < 0 || section == "" {
			return false
		}
		key := string(trimBlank(line[:eq]))
		if !bareKey(key) || seen[section+"."+key] {
			return false
		}
		seen[section+"."+key] = true
		v, ok := value(trimBlank(line[eq+1:]))
		if !ok || !f(section, key, v) {
			return false
		}
	}
	return true
}

// value reads a string or an integer and what may follow it (a comment).
func value(v []byte) (Value, bool) {
	if len(v) == 0 {
		return Value{}, false
	}
	switch q := v[0]; {
	case q == '"' || q == '\'':
		end := bytes.IndexByte(v[1:], q)
		if end < 0 || !restIsComment(v[end+2:]) {
			return Value{}, false
		}
		s := v[1 : end+1]
		for _, ch := range s {
			if ch < 0x20 && ch != '\t' || ch == 0x7f || q == '"' && ch == '\\' {
				return Value{}, false
			}
		}
		return Value{String: string(s)}, true
	case q >= '0' && q <= '9':
		end := 0
		for end < len(v) && v[end] >= '0' && v[end] <= '9' {
			end++
		}
		if (v[0] == '0' && end > 1) || !restIsComment(v[end:]) {
			return Value{}, false
		}
		n, err := strconv.ParseInt(string(v[:end]), 10, 64)
		if err != nil {
			return Value{}, false
		}
		return Value{Int: n, IsInt: true}, true
	}
	return Value{}, false
}

func bareKey(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func trimBlank(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// restIsComment reports whether what follows a value is blanks and, maybe,
// a comment without control characters.
func restIsComment(b []byte) bool {
	b = trimBlank(b)
	if len(b) == 0 {
		return true
	}
	if b[0] != '#' {
		return false
	}
	for _, ch := range b {
		if ch < 0x20 && ch != '\t' || ch == 0x7f {
			return false
		}
	}
	return true
}
