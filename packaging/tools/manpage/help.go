package main

import (
	"errors"
	"strings"
)

// Help is the parsed text kong prints for --help.
type Help struct {
	// Usage is the line after "Usage: ".
	Usage string
	// Description is the text between the usage line and the first
	// section, in paragraphs.
	Description []Para
	// Sections holds every "Title:" block other than Commands, in order
	// (Arguments, Flags, and any group kong prints).
	Sections []Section
	// Commands are the entries of the Commands section.
	Commands []Entry
}

// Para is one paragraph of a description: running text, or an indented
// block (a table, an example) kept line by line.
type Para struct {
	Text string
	Pre  bool
}

// Section is one titled list of entries.
type Section struct {
	Title   string
	Entries []Entry
}

// Entry is a term (a flag, an argument or a command line) and its
// description.
type Entry struct {
	Term string
	Text string
}

// Words returns the command words of a Commands entry: the term up to the
// first argument or flag placeholder.
func (e Entry) Words() []string {
	var w []string
	for _, f := range strings.Fields(e.Term) {
		if strings.ContainsAny(f[:1], "<[-.") {
			break
		}
		w = append(w, f)
	}
	return w
}

// ParseHelp parses kong's help layout:
//
//	Usage: NAME <command> [flags]
//
//	Description paragraphs.
//
//	Flags:
//	  -h, --help      Show context-sensitive help.
//
//	Commands:
//	  rewrite <file> ... [flags]
//	    Rewrite domain configs.
func ParseHelp(text string) (Help, error) {
	var h Help
	lines := strings.Split(strings.ReplaceAll(text, "\t", "    "), "\n")
	i := 0
	for i < len(lines) && strings.TrimSpace(lines[i]) == "" {
		i++
	}
	if i == len(lines) || !strings.HasPrefix(lines[i], "Usage: ") {
		return h, errors.New(`no "Usage:" line`)
	}
	h.Usage = strings.TrimSpace(strings.TrimPrefix(lines[i], "Usage: "))
	i++
	var para []string
	pre := false
	flush := func() {
		if len(para) > 0 {
			if pre {
				h.Description = append(h.Description, Para{Text: strings.Join(dedent(para), "\n"), Pre: true})
			} else {
				h.Description = append(h.Description, Para{Text: strings.Join(para, " ")})
			}
			para = nil
		}
	}
	for ; i < len(lines) && !isTitle(lines, i); i++ {
		l := strings.TrimRight(lines[i], " ")
		switch {
		case l == "":
			flush()
		case indent(l) >= 2:
			if !pre {
				flush()
				pre = true
			}
			para = append(para, l)
		default:
			if pre {
				flush()
				pre = false
			}
			para = append(para, strings.TrimSpace(l))
		}
	}
	flush()
	for i < len(lines) {
		if !isTitle(lines, i) {
			// A closing note such as `Run "x <command> --help" ...`.
			if t := strings.TrimSpace(lines[i]); t != "" && !strings.HasPrefix(t, "Run \"") {
				h.Description = append(h.Description, Para{Text: t})
			}
			i++
			continue
		}
		title := strings.TrimSuffix(strings.TrimSpace(lines[i]), ":")
		i++
		var entries []Entry
		for ; i < len(lines) && !isTitle(lines, i); i++ {
			l := lines[i]
			if strings.TrimSpace(l) == "" {
				continue
			}
			ind := indent(l)
			if ind < 2 {
				break
			}
			if title == "Commands" {
				if ind == 2 {
					entries = append(entries, Entry{Term: strings.TrimSpace(l)})
				} else if len(entries) > 0 {
					entries[len(entries)-1].Text = join(entries[len(entries)-1].Text, strings.TrimSpace(l))
				}
				continue
			}
			if ind == 2 {
				term, text := splitColumns(strings.TrimSpace(l))
				entries = append(entries, Entry{Term: term, Text: text})
			} else if ind >= 2 && len(entries) > 0 && ind > 6 {
				entries[len(entries)-1].Text = join(entries[len(entries)-1].Text, strings.TrimSpace(l))
			} else {
				// "      --config=STRING  ..." : a flag without a short form.
				term, text := splitColumns(strings.TrimSpace(l))
				entries = append(entries, Entry{Term: term, Text: text})
			}
		}
		if title == "Commands" {
			h.Commands = append(h.Commands, entries...)
		} else {
			h.Sections = append(h.Sections, Section{Title: title, Entries: entries})
		}
	}
	return h, nil
}

// isTitle reports whether lines[i] opens a section such as "Flags:": a
// short unindented line ending in a colon, after a blank line (or at the
// start), followed by an indented entry.
func isTitle(lines []string, i int) bool {
	l := strings.TrimRight(lines[i], " ")
	if l == "" || l[0] == ' ' || !strings.HasSuffix(l, ":") || strings.HasPrefix(l, "Usage: ") {
		return false
	}
	if len(l) > 40 || strings.ContainsAny(l, "()$.,;") || len(strings.Fields(l)) > 4 {
		return false
	}
	if i > 0 && strings.TrimSpace(lines[i-1]) != "" {
		return false
	}
	for j := i + 1; j < len(lines); j++ {
		if strings.TrimSpace(lines[j]) == "" {
			continue
		}
		return indent(lines[j]) >= 2
	}
	return false
}

func indent(l string) int { return len(l) - len(strings.TrimLeft(l, " ")) }

// splitColumns splits "TERM   TEXT" at the first run of two or more
// spaces.
func splitColumns(s string) (string, string) {
	if i := strings.Index(s, "  "); i >= 0 {
		return s[:i], strings.TrimSpace(s[i:])
	}
	return s, ""
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + " " + b
}

// dedent removes the indentation the lines share.
func dedent(lines []string) []string {
	min := -1
	for _, l := range lines {
		if n := indent(l); min < 0 || n < min {
			min = n
		}
	}
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l[min:]
	}
	return out
}
