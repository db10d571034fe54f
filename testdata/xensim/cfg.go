package main

import (
	"fmt"
	"strings"
)

// readConfig reads, from a domain config in xl.cfg syntax, the scalar
// values the simulator needs (name, memory, vcpus, uuid, on_*): the last
// assignment of a key wins, a key assigned a list has no scalar value.
// It is the simulator's own small reader, deliberately not
// ganeti-userdown's hvconfig, so that a mistake in one is not mirrored by
// the other. Errors read like libxlutil's: "FILE:LINE: config parsing
// error near `TOKEN': syntax error".
func readConfig(path string, src []byte) (map[string]string, error) {
	s := string(src)
	vals := map[string]string{}
	i, line := 0, 1
	fail := func(near string) error {
		return fmt.Errorf("%s:%d: config parsing error near `%s': syntax error", path, line, near)
	}
	// skipBlank skips spaces and tabs, and with newlines also line ends,
	// semicolons and comments.
	skipBlank := func(newlines bool) {
		for i < len(s) {
			switch c := s[i]; {
			case c == ' ' || c == '\t':
				i++
			case c == '#' && newlines:
				for i < len(s) && s[i] != '\n' {
					i++
				}
			case (c == '\n' || c == ';') && newlines:
				if c == '\n' {
					line++
				}
				i++
			default:
				return
			}
		}
	}
	// quoted reads a '…' or "…" string starting at i.
	quoted := func() (string, error) {
		q := s[i]
		i++
		var b strings.Builder
		for i < len(s) {
			c := s[i]
			switch {
			case c == q:
				i++
				return b.String(), nil
			case c == '\n':
				return "", fail(string(q))
			case c == '\\' && i+1 < len(s):
				i++
				switch e := s[i]; e {
				case 'n':
					b.WriteByte('\n')
				case 't':
					b.WriteByte('\t')
				default:
					b.WriteByte(e)
				}
			default:
				b.WriteByte(c)
			}
			i++
		}
		return "", fail(string(q))
	}
	for {
		skipBlank(true)
		if i >= len(s) {
			return vals, nil
		}
		start := i
		for i < len(s) && (s[i] == '_' || s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z' || i > start && s[i] >= '0' && s[i] <= '9') {
			i++
		}
		key := s[start:i]
		if key == "" {
			return nil, fail(s[i : i+1])
		}
		skipBlank(false)
		appending := strings.HasPrefix(s[i:], "+=")
		switch {
		case appending:
			i += 2
		case strings.HasPrefix(s[i:], "="):
			i++
		default:
			return nil, fail(key)
		}
		skipBlank(false)
		if i >= len(s) || s[i] == '\n' || s[i] == '#' || s[i] == ';' {
			return nil, fail("=")
		}
		var val string
		scalar := true
		switch c := s[i]; {
		case c == '\'' || c == '"':
			v, err := quoted()
			if err != nil {
				return nil, err
			}
			val = v
		case c == '[':
			scalar = false
			for depth := 0; ; {
				if i >= len(s) {
					return nil, fail("[")
				}
				switch s[i] {
				case '[':
					depth++
				case ']':
					depth--
				case '\n':
					line++
				case '#':
					for i < len(s) && s[i] != '\n' {
						i++
					}
					continue
				case '\'', '"':
					if _, err := quoted(); err != nil {
						return nil, err
					}
					continue
				}
				i++
				if depth == 0 {
					break
				}
			}
		case c >= '0' && c <= '9':
			start := i
			for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z' || s[i] == '.') {
				i++
			}
			val = s[start:i]
		default:
			return nil, fail(s[i : i+1])
		}
		skipBlank(false)
		if i < len(s) && s[i] != '\n' && s[i] != ';' && s[i] != '#' {
			return nil, fail(s[i : i+1])
		}
		switch {
		case appending:
		case scalar:
			vals[key] = val
		default:
			delete(vals, key)
		}
	}
}
