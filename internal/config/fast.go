package config

import (
	"bytes"
	"encoding"
	"reflect"
	"strconv"
	"unicode/utf8"
)

// parseSimple decodes the plain subset of TOML that configuration files
// use (comments, [section] headers, `key = "string"`, `key = 'literal'`,
// `key = 123`, each on its own line) into the defaults, without the cost
// of a full TOML decoder: the toolstack shim reads the file on every xl
// call. ok is false for anything outside that subset (an escape, a
// repeated key, an unknown section or key, a value of the wrong type):
// the full decoder then reads the file and reports what is wrong. For
// every document it accepts, the result equals the full decoder's
// (FuzzParseSimple checks it).
func parseSimple(b []byte) (c Config, ok bool) {
	c = Default()
	if !utf8.Valid(b) {
		return c, false
	}
	root := reflect.ValueOf(&c).Elem()
	var section reflect.Value
	seen := map[string]bool{}
	sectionName := ""
	for len(b) > 0 {
		var line []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			line, b = b, nil
		}
		line = trimBlank(line)
		if len(line) == 0 {
			continue
		}
		if line[0] == '#' {
			if !restIsComment(line) {
				return c, false
			}
			continue
		}
		if line[0] == '[' {
			end := bytes.IndexByte(line, ']')
			if end < 0 || !restIsComment(line[end+1:]) {
				return c, false
			}
			name := string(trimBlank(line[1:end]))
			if !bareKey(name) || seen["["+name] {
				return c, false
			}
			seen["["+name] = true
			section = fieldByTag(root, name)
			if !section.IsValid() || section.Kind() != reflect.Struct {
				return c, false
			}
			sectionName = name
			continue
		}
		eq := bytes.IndexByte(line, '=')
		if eq < 0 || !section.IsValid() {
			return c, false
		}
		key := string(trimBlank(line[:eq]))
		if !bareKey(key) || seen[sectionName+"."+key] {
			return c, false
		}
		seen[sectionName+"."+key] = true
		f := fieldByTag(section, key)
		if !f.IsValid() {
			return c, false
		}
		v := trimBlank(line[eq+1:])
		if len(v) == 0 {
			return c, false
		}
		switch q := v[0]; {
		case q == '"' || q == '\'':
			end := bytes.IndexByte(v[1:], q)
			if end < 0 || !restIsComment(v[end+2:]) {
				return c, false
			}
			s := v[1 : end+1]
			for _, ch := range s {
				if ch < 0x20 && ch != '\t' || ch == 0x7f || q == '"' && ch == '\\' {
					return c, false
				}
			}
			if !setString(f, string(s)) {
				return c, false
			}
		case q >= '0' && q <= '9':
			end := 0
			for end < len(v) && v[end] >= '0' && v[end] <= '9' {
				end++
			}
			if (v[0] == '0' && end > 1) || !restIsComment(v[end:]) || f.Kind() != reflect.Int {
				return c, false
			}
			n, err := strconv.ParseInt(string(v[:end]), 10, 64)
			if err != nil {
				return c, false
			}
			f.SetInt(n)
		default:
			return c, false
		}
	}
	return c, true
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

func setString(f reflect.Value, s string) bool {
	if f.Addr().Type().Implements(textUnmarshaler) {
		return f.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)) == nil
	}
	if f.Kind() != reflect.String {
		return false
	}
	f.SetString(s)
	return true
}

// fieldByTag returns the field of struct v whose toml tag is name.
func fieldByTag(v reflect.Value, name string) reflect.Value {
	t := v.Type()
	for i := range t.NumField() {
		if t.Field(i).Tag.Get("toml") == name {
			return v.Field(i)
		}
	}
	return reflect.Value{}
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
