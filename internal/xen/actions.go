package xen

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// ActionKeys are the per-domain shutdown action keys Xen reports, in the
// order of libxl's domain_config.
var ActionKeys = []string{"on_poweroff", "on_reboot", "on_watchdog", "on_crash", "on_soft_reset"}

// xlActionDefault is libxl's init value for every action_on_shutdown
// field: `xl list -l` leaves out an action equal to it.
const xlActionDefault = "destroy"

// xmActionDefaults are xend's defaults for a domain config that does not
// name an action.
var xmActionDefaults = map[string]string{
	"on_poweroff": "destroy",
	"on_reboot":   "restart",
	"on_crash":    "restart",
}

// xlActionValue spells a libxl action enum value ("coredump_restart") the
// way xl.cfg writes it ("coredump-restart").
func xlActionValue(v string) string {
	if v == "restart_rename" {
		return "rename-restart"
	}
	return strings.ReplaceAll(v, "_", "-")
}

// ParseXLActions reads the live actions of one domain from the JSON that
// `xl list -l DOM` prints (an array holding {"domid": N, "config": {...}}).
// Every key of ActionKeys is present in the result: xl leaves out actions
// equal to libxl's default, destroy, which is filled in. Values use xl.cfg
// spelling ("coredump-restart", "rename-restart").
func ParseXLActions(out []byte) (map[string]string, error) {
	var doms []struct {
		DomID  *int                       `json:"domid"`
		Config map[string]json.RawMessage `json:"config"`
	}
	if err := json.Unmarshal(out, &doms); err != nil {
		return nil, fmt.Errorf("xl list -l: %w", err)
	}
	if len(doms) != 1 {
		return nil, fmt.Errorf("xl list -l: want the configuration of one domain, got %d", len(doms))
	}
	if doms[0].Config == nil {
		return nil, fmt.Errorf("xl list -l: no \"config\" object")
	}
	acts := make(map[string]string, len(ActionKeys))
	for _, k := range ActionKeys {
		raw, ok := doms[0].Config[k]
		if !ok {
			acts[k] = xlActionDefault
			continue
		}
		var v string
		if err := json.Unmarshal(raw, &v); err != nil || v == "" {
			return nil, fmt.Errorf("xl list -l: %s is %s, want an action name", k, raw)
		}
		acts[k] = xlActionValue(v)
	}
	return acts, nil
}

// SExpr is a node of the S-expressions `xm list -l` prints: an atom or a
// list.
type SExpr struct {
	Atom string
	List []SExpr
	// IsList tells an empty list from an empty atom.
	IsList bool
}

// Child returns the value of the first (key value...) child list of e, as
// in "(domain (name web1) ...)": Child("name") is "web1".
func (e SExpr) Child(key string) (string, bool) {
	for _, c := range e.List {
		if c.IsList && len(c.List) >= 1 && !c.List[0].IsList && c.List[0].Atom == key {
			if len(c.List) >= 2 && !c.List[1].IsList {
				return c.List[1].Atom, true
			}
			return "", true
		}
	}
	return "", false
}

// ParseSExprs parses a sequence of S-expressions as xend's PrettyPrint
// writes them: parentheses, bare atoms, and atoms quoted with ' or " with
// backslash escapes.
func ParseSExprs(src []byte) ([]SExpr, error) {
	p := sexpParser{src: string(src), line: 1}
	var out []SExpr
	for {
		p.skipSpace()
		if p.pos >= len(p.src) {
			return out, nil
		}
		e, err := p.parse()
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
}

// maxSExprDepth bounds the nesting of `xm list -l` output: xend's forms
// nest a few levels (domain, device, vbd, ...); deeper input is refused
// rather than parsed by ever deeper recursion.
const maxSExprDepth = 64

type sexpParser struct {
	src   string
	pos   int
	line  int
	depth int
}

func (p *sexpParser) errorf(format string, a ...any) error {
	return fmt.Errorf("s-expression line %d: %s", p.line, fmt.Sprintf(format, a...))
}

func (p *sexpParser) skipSpace() {
	for p.pos < len(p.src) {
		switch p.src[p.pos] {
		case '\n':
			p.line++
			fallthrough
		case ' ', '\t', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *sexpParser) parse() (SExpr, error) {
	p.skipSpace()
	if p.pos >= len(p.src) {
		return SExpr{}, p.errorf("unexpected end of input")
	}
	switch c := p.src[p.pos]; c {
	case '(':
		if p.depth >= maxSExprDepth {
			return SExpr{}, p.errorf("lists nested deeper than %d levels", maxSExprDepth)
		}
		p.depth++
		defer func() { p.depth-- }()
		p.pos++
		e := SExpr{IsList: true}
		for {
			p.skipSpace()
			if p.pos >= len(p.src) {
				return SExpr{}, p.errorf("unclosed '('")
			}
			if p.src[p.pos] == ')' {
				p.pos++
				return e, nil
			}
			c, err := p.parse()
			if err != nil {
				return SExpr{}, err
			}
			e.List = append(e.List, c)
		}
	case ')':
		return SExpr{}, p.errorf("unexpected ')'")
	case '\'', '"':
		p.pos++
		var b strings.Builder
		for {
			if p.pos >= len(p.src) {
				return SExpr{}, p.errorf("unterminated string")
			}
			ch := p.src[p.pos]
			p.pos++
			switch {
			case ch == c:
				return SExpr{Atom: b.String()}, nil
			case ch == '\\' && p.pos < len(p.src):
				b.WriteByte(p.src[p.pos])
				p.pos++
			default:
				if ch == '\n' {
					p.line++
				}
				b.WriteByte(ch)
			}
		}
	default:
		start := p.pos
		for p.pos < len(p.src) && !strings.ContainsRune(" \t\r\n()", rune(p.src[p.pos])) {
			p.pos++
		}
		return SExpr{Atom: p.src[start:p.pos]}, nil
	}
}

// XMDomainInfo is what ganeti-userdown reads from one (domain ...) form of
// `xm list -l`.
type XMDomainInfo struct {
	ID      int // -1 when the domain is not running
	Name    string
	UUID    string
	Actions map[string]string
}

// ParseXMLong parses the output of `xm list -l [DOM]`: one (domain ...)
// S-expression per domain. Actions have xend's defaults filled in.
func ParseXMLong(out []byte) ([]XMDomainInfo, error) {
	exprs, err := ParseSExprs(out)
	if err != nil {
		return nil, fmt.Errorf("xm list -l: %w", err)
	}
	var infos []XMDomainInfo
	for _, e := range exprs {
		if !e.IsList || len(e.List) == 0 || e.List[0].Atom != "domain" {
			return nil, fmt.Errorf("xm list -l: want (domain ...), got a form starting with %q", first(e))
		}
		info := XMDomainInfo{ID: -1, Actions: map[string]string{}}
		if s, ok := e.Child("domid"); ok && s != "" && s != "None" {
			id, err := strconv.Atoi(s)
			if err != nil || id < 0 {
				return nil, fmt.Errorf("xm list -l: bad domid %q", s)
			}
			info.ID = id
		}
		info.Name, _ = e.Child("name")
		info.UUID, _ = e.Child("uuid")
		for _, k := range ActionKeys {
			if v, ok := e.Child(k); ok && v != "" {
				info.Actions[k] = v
			} else if d, ok := xmActionDefaults[k]; ok {
				info.Actions[k] = d
			}
		}
		infos = append(infos, info)
	}
	return infos, nil
}

func first(e SExpr) string {
	if !e.IsList {
		return e.Atom
	}
	if len(e.List) == 0 {
		return "()"
	}
	return first(e.List[0])
}
