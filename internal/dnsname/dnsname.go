// Package dnsname is the one normalisation of the names Ganeti gives its
// nodes: Ganeti stores a node name in lower case without a trailing dot
// (its netutils.Hostname.GetNormalizedName), so this node's name, however
// the host or the configuration spells it, must be compared that way.
package dnsname

import "strings"

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
