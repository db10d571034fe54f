package hvconfig

import "fmt"

// TokenKind is the kind of a lexical token of a domain config.
type TokenKind uint8

// The tokens of Xen's config grammar. Spaces and tabs between tokens are
// not tokens: they are the bytes between one token's End and the next
// one's Start.
const (
	TokIdent     TokenKind = iota + 1 // key: [a-z][._0-9a-z]*
	TokNumber                         // [0-9][0-9a-fx]*
	TokString                         // '…' or "…" with backslash escapes
	TokAssign                         // =
	TokAppend                         // +=
	TokComma                          // ,
	TokLBracket                       // [
	TokRBracket                       // ]
	TokSemicolon                      // ;
	TokNewline                        // a newline, or a # comment with its newline
	TokEOF                            // end of input (empty)
)

var tokenNames = [...]string{
	TokIdent: "key", TokNumber: "number", TokString: "string",
	TokAssign: "'='", TokAppend: "'+='", TokComma: "','",
	TokLBracket: "'['", TokRBracket: "']'", TokSemicolon: "';'",
	TokNewline: "end of line", TokEOF: "end of file",
}

// String names the kind as it appears in error messages.
func (k TokenKind) String() string {
	if int(k) < len(tokenNames) && tokenNames[k] != "" {
		return tokenNames[k]
	}
	return fmt.Sprintf("TokenKind(%d)", uint8(k))
}

// Token is one lexical token: its kind and where its bytes are in the
// source (src[Start:End]), with the 1-based line and byte column of its
// first byte.
type Token struct {
	Kind       TokenKind
	Start, End int
	Line, Col  int
}

// lexer splits a config into tokens the way libxlutil's flex scanner does
// (longest match; a byte no rule accepts is a lexical error).
type lexer struct {
	name      string
	src       []byte
	pos       int
	line      int
	lineStart int
	// str is the decoded value of the last TokString returned.
	str string
}

// errAt reports a lexical error at byte offset off of the current line.
func (l *lexer) errAt(off int, format string, a ...any) *SyntaxError {
	e := l.errTok(Token{Start: off, Line: l.line, Col: off - l.lineStart + 1}, format, a...)
	e.lexical = true
	return e
}

// errTok reports an error at a token.
func (l *lexer) errTok(t Token, format string, a ...any) *SyntaxError {
	return &SyntaxError{Name: l.name, Line: t.Line, Col: t.Col, Offset: t.Start, Msg: fmt.Sprintf(format, a...)}
}

func isIdentStart(c byte) bool { return c >= 'a' && c <= 'z' }
func isIdentByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_'
}
func isDigit(c byte) bool      { return c >= '0' && c <= '9' }
func isNumberByte(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'f' || c == 'x' }
func isPythonByte(c byte) bool { return c >= '+' && c <= '.' || c == '(' || c == ')' || c == ':' }
func isQuote(c byte) bool      { return c == '\'' || c == '"' }
func isBlank(c byte) bool      { return c == ' ' || c == '\t' }

// next returns the next token. Strings are checked here (their escapes
// must be ones Xen accepts), so a token that comes back is well formed.
func (l *lexer) next() (Token, error) {
	for l.pos < len(l.src) && isBlank(l.src[l.pos]) {
		l.pos++
	}
	start := l.pos
	tok := Token{Start: start, Line: l.line, Col: start - l.lineStart + 1}
	if start >= len(l.src) {
		tok.Kind, tok.End = TokEOF, start
		return tok, nil
	}
	c := l.src[start]
	end := start + 1
	switch {
	case c == '\n':
		tok.Kind = TokNewline
	case c == '#':
		i := start
		for i < len(l.src) && l.src[i] != '\n' {
			if l.src[i] == 0 {
				return tok, l.errAt(i, "NUL byte in comment")
			}
			i++
		}
		if i == len(l.src) {
			return tok, l.errAt(start, "comment at end of file has no newline after it (Xen rejects that)")
		}
		tok.Kind, end = TokNewline, i+1
	case isIdentStart(c):
		for end < len(l.src) && isIdentByte(l.src[end]) {
			end++
		}
		tok.Kind = TokIdent
	case isDigit(c):
		for end < len(l.src) && isNumberByte(l.src[end]) {
			end++
		}
		tok.Kind = TokNumber
	case isQuote(c):
		e, v, err := l.scanString(start)
		if err != nil {
			return tok, err
		}
		tok.Kind, end, l.str = TokString, e, v
	case c == ',':
		tok.Kind = TokComma
	case c == '[':
		tok.Kind = TokLBracket
	case c == ']':
		tok.Kind = TokRBracket
	case c == '=':
		tok.Kind = TokAssign
	case c == ';':
		tok.Kind = TokSemicolon
	case c == '+' && end < len(l.src) && l.src[end] == '=':
		tok.Kind, end = TokAppend, end+1
	default:
		return tok, l.badByte(start)
	}
	tok.End = end
	l.pos = end
	if tok.Kind == TokNewline {
		l.line++
		l.lineStart = end
	}
	return tok, nil
}

// badByte describes a byte no rule of the grammar accepts.
func (l *lexer) badByte(off int) *SyntaxError {
	c := l.src[off]
	switch {
	case c == '\r':
		return l.errAt(off, "carriage return (CRLF line ends?): Xen rejects it")
	case off == 0 && len(l.src) >= 3 && c == 0xef && l.src[1] == 0xbb && l.src[2] == 0xbf:
		return l.errAt(off, "byte-order mark at start of file: Xen rejects it")
	case c == 0:
		return l.errAt(off, "NUL byte")
	case c >= 'A' && c <= 'Z':
		return l.errAt(off, "upper-case letter %q: keys are [a-z][._0-9a-z]*", c)
	case isPythonByte(c):
		return l.errAt(off, "unexpected %q: this looks like Python, which Xen's config grammar does not accept", c)
	case c >= 0x20 && c < 0x7f:
		return l.errAt(off, "unexpected %q", c)
	default:
		return l.errAt(off, "unexpected byte 0x%02x", c)
	}
}

// scanString finds the end of the quoted string starting at start and
// decodes it as libxlutil's dequoting does. It returns the offset just past
// the closing quote and the value.
func (l *lexer) scanString(start int) (int, string, error) {
	q := l.src[start]
	i := start + 1
	for {
		if i >= len(l.src) || l.src[i] == '\n' {
			return 0, "", l.errAt(start, "unterminated string (strings end on the line they start)")
		}
		switch c := l.src[i]; c {
		case q:
			end := i + 1
			v, err := l.unquote(start, end)
			if err != nil {
				return 0, "", err
			}
			return end, v, nil
		case '\\':
			if i+1 >= len(l.src) || l.src[i+1] == '\n' {
				return 0, "", l.errAt(start, "unterminated string (backslash at end of line)")
			}
			i += 2
		case 0:
			return 0, "", l.errAt(i, "NUL byte in string")
		default:
			i++
		}
	}
}

// unquote returns the value of the string token src[start:end], decoding
// escapes as libxlutil does: \' \" \\ \a \b \f \n \r \t \v; \x is always
// an error; an octal escape (\ and a digit 0-7) is dropped from the value
// together with what C's strtoul reads in base 10 from the next three
// bytes, which must be at least two bytes; anything else is an error.
func (l *lexer) unquote(start, end int) (string, error) {
	raw := l.src[start+1 : end-1]
	// Fast path: no escapes.
	hasEscape := false
	for _, c := range raw {
		if c == '\\' {
			hasEscape = true
			break
		}
	}
	if !hasEscape {
		return string(raw), nil
	}
	out := make([]byte, 0, len(raw))
	tok := l.src[start:end] // what follows the escape may include the closing quote
	for p := 1; p < len(tok)-1; {
		c := tok[p]
		p++
		if c != '\\' {
			out = append(out, c)
			continue
		}
		escOff := start + p - 1
		nc := tok[p]
		p++
		switch {
		case nc == '"' || nc == '\'' || nc == '\\':
			out = append(out, nc)
		case nc == 'a':
			out = append(out, '\a')
		case nc == 'b':
			out = append(out, '\b')
		case nc == 'f':
			out = append(out, '\f')
		case nc == 'n':
			out = append(out, '\n')
		case nc == 'r':
			out = append(out, '\r')
		case nc == 't':
			out = append(out, '\t')
		case nc == 'v':
			out = append(out, '\v')
		case nc == 'x':
			return "", l.errAt(escOff, `\x escapes in strings are rejected by Xen`)
		case nc >= '0' && nc <= '7':
			n := strtoulLen(tok[p:min(p+3, len(tok))])
			if n < 2 {
				return "", l.errAt(escOff, `invalid octal escape \%c (Xen needs two more digits after it)`, nc)
			}
			p += n
		default:
			return "", l.errAt(escOff, `invalid escape \%c in string`, nc)
		}
	}
	return string(out), nil
}

// strtoulLen returns how many bytes of b C's strtoul(b, &ep, 10) consumes:
// leading white space, an optional sign and at least one decimal digit, or
// 0 when there is no number.
func strtoulLen(b []byte) int {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] >= '\t' && b[i] <= '\r') {
		i++
	}
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		i++
	}
	d := i
	for i < len(b) && isDigit(b[i]) {
		i++
	}
	if i == d {
		return 0
	}
	return i
}
