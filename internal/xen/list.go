package xen

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ListError reports a domain listing that could not be parsed. One bad line
// makes the whole listing an error: decisions are never made on a partial
// view of the node.
type ListError struct {
	Line int    // 1-based line number in the output; 0 for the output as a whole
	Text string // the offending line, as printed
	Msg  string // what is wrong with it
}

// Error names the offending line of the listing.
func (e *ListError) Error() string {
	if e.Line == 0 {
		return "domain list: " + e.Msg
	}
	return fmt.Sprintf("domain list line %d: %s: %q", e.Line, e.Msg, e.Text)
}

// The header fields of `xl list`, `xl list -v` and `xm list`, split by
// whitespace (xl separates some of them with tabs, which captures often
// show expanded).
var (
	plainHeader   = []string{"Name", "ID", "Mem", "VCPUs", "State", "Time(s)"}
	verboseHeader = append(slices.Clip(plainHeader), "UUID", "Reason-Code", "Security", "Label")
)

// isUUID reports a lower-case canonical UUID (8-4-4-4-12 hex digits).
// Checked by hand rather than with a package-level regexp, whose
// compilation would cost every shim start a fraction of a millisecond.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return false
			}
		}
	}
	return true
}

// ParseList parses the output of `xl list`, `xl list -v` (which adds the
// UUID, the shutdown reason code and the security label) or `xm list` into
// domains, in the order printed. The header is checked. Each line is parsed
// by whitespace from the right, so names with odd characters, such as the
// "(null)" xl prints for a dying domain, are kept whole. Any line that does
// not parse, an unknown state letter, a reason code that contradicts the
// state letters or a domid listed twice makes the whole listing an error.
func ParseList(flavour Flavour, out []byte) ([]Domain, error) {
	if flavour != XL && flavour != XM {
		return nil, &ListError{Msg: fmt.Sprintf("unknown toolstack flavour %q", flavour)}
	}
	text := string(out)
	text = strings.TrimSuffix(text, "\n")
	if text == "" {
		return nil, &ListError{Msg: "empty output (no header line)"}
	}
	lines := strings.Split(text, "\n")
	head := strings.Fields(lines[0])
	var verbose bool
	switch {
	case slices.Equal(head, plainHeader):
	case flavour == XL && slices.Equal(head, verboseHeader):
		verbose = true
	default:
		return nil, &ListError{Line: 1, Text: lines[0], Msg: "unexpected header"}
	}
	doms := make([]Domain, 0, len(lines)-1)
	seen := make(map[int]int, len(lines)-1)
	for i, line := range lines[1:] {
		n := i + 2
		d, msg := parseListLine(flavour, verbose, line)
		if msg != "" {
			return nil, &ListError{Line: n, Text: line, Msg: msg}
		}
		if prev, dup := seen[d.ID]; dup {
			return nil, &ListError{Line: n, Text: line, Msg: fmt.Sprintf("domid %d already listed on line %d", d.ID, prev)}
		}
		seen[d.ID] = n
		doms = append(doms, d)
	}
	return doms, nil
}

// field is one whitespace-separated token of a line and where it starts.
type field struct {
	text  string
	start int
}

func splitFields(line string) []field {
	var fs []field
	start := -1
	for i := 0; i <= len(line); i++ {
		space := i == len(line) || line[i] == ' ' || line[i] == '\t'
		switch {
		case space && start >= 0:
			fs = append(fs, field{line[start:i], start})
			start = -1
		case !space && start < 0:
			start = i
		}
	}
	return fs
}

// parseListLine parses one domain line; a non-empty message says why it
// does not parse.
func parseListLine(flavour Flavour, verbose bool, line string) (Domain, string) {
	if strings.ContainsAny(line, "\r\x00") {
		return Domain{}, "control character in line"
	}
	right := 5 // ID Mem VCPUs State Time(s)
	if verbose {
		right = 8 // + UUID Reason-Code Security-Label
	}
	fs := splitFields(line)
	if len(fs) < right+1 {
		return Domain{}, fmt.Sprintf("want a name and %d fields, got %d fields", right, len(fs))
	}
	cols := fs[len(fs)-right:]
	name := strings.TrimRight(line[:cols[0].start], " \t")
	if name == "" || fs[0].start != 0 {
		return Domain{}, "line does not start with a domain name"
	}
	var d Domain
	d.Name = name
	var err error
	if d.ID, err = strconv.Atoi(cols[0].text); err != nil || d.ID < 0 {
		return Domain{}, fmt.Sprintf("bad domid %q", cols[0].text)
	}
	if d.MemMiB, err = strconv.Atoi(cols[1].text); err != nil || d.MemMiB < 0 {
		return Domain{}, fmt.Sprintf("bad memory %q", cols[1].text)
	}
	if d.VCPUs, err = strconv.Atoi(cols[2].text); err != nil || d.VCPUs < 0 {
		return Domain{}, fmt.Sprintf("bad vcpu count %q", cols[2].text)
	}
	if d.State, err = ParseState(flavour, cols[3].text); err != nil {
		return Domain{}, err.Error()
	}
	if d.CPUSeconds, err = strconv.ParseFloat(cols[4].text, 64); err != nil || d.CPUSeconds < 0 {
		return Domain{}, fmt.Sprintf("bad cpu time %q", cols[4].text)
	}
	if !verbose {
		return d, ""
	}
	if !isUUID(cols[5].text) {
		return Domain{}, fmt.Sprintf("bad uuid %q", cols[5].text)
	}
	d.UUID = cols[5].text
	code := cols[6].text
	if !d.State.Shutdown {
		if code != "-" {
			return Domain{}, fmt.Sprintf("reason code %q for a domain that is not shut down", code)
		}
		return d, ""
	}
	c, err := strconv.ParseUint(code, 16, 31)
	if err != nil {
		return Domain{}, fmt.Sprintf("bad reason code %q for a shut-down domain", code)
	}
	if want := xlReasonLetter(int(c)); d.State.Letters[4] != want {
		return Domain{}, fmt.Sprintf("reason code %s contradicts state letter %q", code, d.State.Letters[4])
	}
	d.State.Code = int(c)
	d.State.Reason = ReasonFromCode(int(c))
	return d, ""
}
