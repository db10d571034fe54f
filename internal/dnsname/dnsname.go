// Package dnsname is the one place for the names Ganeti gives its nodes
// and instances: their normalisation (Ganeti stores a node name in lower
// case without a trailing dot, its netutils.Hostname.GetNormalizedName, so
// this node's name, however the host or the configuration spells it, must
// be compared that way), and the check every name from Ganeti (hook
// environments, RAPI and CLI answers) passes before it reaches a file
// path, a command line or a request path.
package dnsname

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Normalize returns name as Ganeti stores it: lower case, without
// trailing dots.
func Normalize(name string) string {
	return strings.TrimRight(strings.ToLower(name), ".")
}

// Equal reports whether a and b name the same node once normalised; an
// empty name equals nothing.
func Equal(a, b string) bool {
	a, b = Normalize(a), Normalize(b)
	return a != "" && a == b
}

// MaxLen is the longest DNS name.
const MaxLen = 253

// Check reports whether s can be a Ganeti instance or node name: a DNS
// name of dot-separated labels of letters, digits, '-' and '_' (Ganeti
// accepts the underscore), each 1 to 63 long and not starting with '-', at
// most 253 in all. Such a name is safe as a file name and as a command
// argument: no '/', no "..", no leading '-', no space or control byte.
func Check(s string) error {
	if s == "" {
		return errors.New("empty name")
	}
	if len(s) > MaxLen {
		return fmt.Errorf("name of %d bytes is longer than %d", len(s), MaxLen)
	}
	for i, label := range strings.Split(s, ".") {
		if label == "" {
			return fmt.Errorf("%s: empty label", Quote(s))
		}
		if len(label) > 63 {
			return fmt.Errorf("%s: label %d is longer than 63", Quote(s), i+1)
		}
		if label[0] == '-' {
			return fmt.Errorf("%s: label starts with '-'", Quote(s))
		}
		for j := 0; j < len(label); j++ {
			c := label[j]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("%s: byte %q not allowed in a DNS name", Quote(s), c)
			}
		}
	}
	return nil
}

// Quote quotes a name for a message, cut to a readable length: a name
// that failed Check may hold anything.
func Quote(s string) string {
	const max = 80
	if len(s) > max {
		return fmt.Sprintf("%q... (%d bytes)", s[:max], len(s))
	}
	return strconv.Quote(s)
}
