package hvconfig

// Parse parses a Xen domain config (the xl.cfg grammar of libxlutil); name
// is used in errors. A config Xen rejects is a *SyntaxError.
//
// Parse is stricter than libxlutil in two corners, on purpose: it rejects
// NUL bytes anywhere (libxlutil accepts them in comments), and a stray
// last byte that no token accepts, such as a lone '#' or '\r' at the very
// end of the file, which libxlutil's lexer silently drops because the
// file ends before it reports the error.
func Parse(name string, src []byte) (*File, error) {
	p := &parser{
		lex: lexer{name: name, src: src, line: 1},
		f: &File{
			name:   name,
			src:    src,
			values: make(map[string]Value),
		},
	}
	if err := p.advance(); err != nil {
		return nil, err
	}
	if err := p.file(); err != nil {
		return nil, err
	}
	return p.f, nil
}

type parser struct {
	lex lexer
	f   *File
	tok Token  // current token
	str string // decoded value when tok is a TokString
	// prevEnd is where the token before tok ends.
	prevEnd int
	// depth is the nesting of lists at tok.
	depth int
}

// advance moves to the next token. Tokens are not kept (a File's memory
// stays in proportion to its statements, not its bytes): only the quote
// counts QuoteStyle needs.
func (p *parser) advance() error {
	t, err := p.lex.next()
	if err != nil {
		return err
	}
	p.prevEnd = p.tok.End
	p.tok, p.str = t, p.lex.str
	if t.Kind == TokString {
		if p.lex.src[t.Start] == '"' {
			p.f.doubleQuoted++
		} else {
			p.f.singleQuoted++
		}
	}
	return nil
}

func (p *parser) errTok(format string, a ...any) *SyntaxError {
	return p.lex.errTok(p.tok, format, a...)
}

// file: (assignment? (NEWLINE | ';'))* assignment? EOF
func (p *parser) file() error {
	for {
		switch p.tok.Kind {
		case TokEOF:
			return nil
		case TokNewline, TokSemicolon:
			if err := p.advance(); err != nil {
				return err
			}
		case TokIdent:
			if err := p.assignment(); err != nil {
				return err
			}
			switch p.tok.Kind {
			case TokEOF:
				return nil
			case TokNewline, TokSemicolon:
				if err := p.advance(); err != nil {
					return err
				}
			default:
				return p.errTok("unexpected %s after the value: a statement ends with a newline or ';'", p.tok.Kind)
			}
		default:
			return p.errTok("unexpected %s: expected a key", p.tok.Kind)
		}
	}
}

// assignment: IDENT ('=' | '+=') value
func (p *parser) assignment() error {
	key := p.tok
	st := Statement{
		Key:      string(p.lex.src[key.Start:key.End]),
		Line:     key.Line,
		Col:      key.Col,
		KeyStart: key.Start,
	}
	if err := p.advance(); err != nil {
		return err
	}
	switch p.tok.Kind {
	case TokAssign:
		st.Op = OpAssign
	case TokAppend:
		st.Op = OpAppend
	default:
		return p.errTok("unexpected %s after key %q: expected '=' or '+='", p.tok.Kind, st.Key)
	}
	st.OpStart, st.OpEnd = p.tok.Start, p.tok.End
	if err := p.advance(); err != nil {
		return err
	}
	st.ValueStart = p.tok.Start
	v, err := p.value()
	if err != nil {
		return err
	}
	st.Value = v
	st.ValueEnd = p.prevEnd

	eff := v
	prev, seen := p.f.values[st.Key]
	if st.Op == OpAppend && seen {
		var ok bool
		if eff, ok = concat(prev, v); !ok {
			return p.lex.errTok(key, "%s += %s: cannot add a list to a string or a string to a list", st.Key, v.Kind)
		}
	}
	if !seen {
		p.f.keys = append(p.f.keys, st.Key)
	}
	p.f.values[st.Key] = eff
	p.f.stmts = append(p.f.stmts, st)
	return nil
}

// value: STRING | NUMBER | '[' NEWLINE* valuelist ']'
func (p *parser) value() (Value, error) {
	switch p.tok.Kind {
	case TokString:
		v := Value{Kind: KindString, String: p.str, Quote: p.lex.src[p.tok.Start]}
		return v, p.advance()
	case TokNumber:
		v := Value{Kind: KindNumber, String: string(p.lex.src[p.tok.Start:p.tok.End])}
		return v, p.advance()
	case TokLBracket:
		return p.list()
	case TokNewline:
		return Value{}, p.errTok("expected a value on the same line as the key")
	default:
		return Value{}, p.errTok("unexpected %s: expected a value (a quoted string, a number or a [list])", p.tok.Kind)
	}
}

// list: '[' NL* ( ']' | value NL* (',' NL* ( ']' | value NL* ))* ']' )
func (p *parser) list() (Value, error) {
	open := p.tok
	if p.depth >= maxDepth {
		return Value{}, p.errTok("lists nested deeper than %d levels", maxDepth)
	}
	p.depth++
	defer func() { p.depth-- }()
	v := Value{Kind: KindList, List: []Value{}}
	if err := p.advance(); err != nil {
		return v, err
	}
	if err := p.skipNewlines(); err != nil {
		return v, err
	}
	if p.tok.Kind == TokRBracket {
		return v, p.advance()
	}
	for {
		if p.tok.Kind == TokEOF {
			return v, p.unclosed(open)
		}
		item, err := p.value()
		if err != nil {
			return v, err
		}
		v.List = append(v.List, item)
		if err := p.skipNewlines(); err != nil {
			return v, err
		}
		switch p.tok.Kind {
		case TokRBracket:
			return v, p.advance()
		case TokComma:
			if err := p.advance(); err != nil {
				return v, err
			}
			if err := p.skipNewlines(); err != nil {
				return v, err
			}
			if p.tok.Kind == TokRBracket {
				return v, p.advance()
			}
		case TokEOF:
			return v, p.unclosed(open)
		default:
			return v, p.errTok("unexpected %s in list: expected ',' or ']'", p.tok.Kind)
		}
	}
}

func (p *parser) unclosed(open Token) *SyntaxError {
	return p.lex.errTok(open, "list opened here is not closed before the end of the file")
}

func (p *parser) skipNewlines() error {
	for p.tok.Kind == TokNewline {
		if err := p.advance(); err != nil {
			return err
		}
	}
	return nil
}
