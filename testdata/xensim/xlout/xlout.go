// Package xlout prints what the Xen toolstacks print for `list`, for the
// Xen simulator: xl's layout as tools/xl/xl_info.c (list_domains) prints
// it, xm's as xm's xm_brief_list does. It is written from those format
// strings, independently of ganeti-userdown's own parser (internal/xen),
// so that a test of the parser against the simulator checks two readings
// of one format instead of one reading twice.
package xlout

import (
	"bytes"
	"fmt"
)

// Domain is one domain as libxl's dominfo (xl) or xend's domain record
// (xm) describes it: flags, not state letters.
type Domain struct {
	Name   string // "" prints as glibc prints a NULL string: "(null)"
	ID     int
	MemMiB int
	VCPUs  int

	Running, Blocked, Paused, Shutdown, Dying bool
	// ShutdownReason is libxl's shutdown_reason, Xen's SHUTDOWN_* code;
	// xl reads it only when Shutdown is set.
	ShutdownReason int
	// Crashed is xend's crashed flag (xm only).
	Crashed bool

	CPUSeconds float64
	UUID       string
	// Label is the security label; "" prints "-".
	Label string
}

// xlReasonLetters is xl_info.c's shutdown_reason_letters.
const xlReasonLetters = "-rscwS"

func flag(set bool, c byte) byte {
	if set {
		return c
	}
	return '-'
}

// XLState returns the six state letters xl prints for d: the reason
// letter is that of shutdown_reason when shut down, of reason 0 ('-')
// otherwise, and '?' for a reason beyond the table.
func XLState(d Domain) string {
	reason := 0
	if d.Shutdown {
		reason = d.ShutdownReason
	}
	r := byte('?')
	if reason >= 0 && reason < len(xlReasonLetters) {
		r = xlReasonLetters[reason]
	}
	return string([]byte{flag(d.Running, 'r'), flag(d.Blocked, 'b'), flag(d.Paused, 'p'), flag(d.Shutdown, 's'), r, flag(d.Dying, 'd')})
}

// XMState returns the six state letters xend reports for d (r b p s c d).
func XMState(d Domain) string {
	return string([]byte{flag(d.Running, 'r'), flag(d.Blocked, 'b'), flag(d.Paused, 'p'), flag(d.Shutdown, 's'), flag(d.Crashed, 'c'), flag(d.Dying, 'd')})
}

func name(d Domain) string {
	if d.Name == "" {
		return "(null)"
	}
	return d.Name
}

// XL prints `xl list` (verbose: `xl list -v`).
func XL(verbose bool, doms []Domain) []byte {
	var b bytes.Buffer
	b.WriteString("Name                                        ID   Mem VCPUs\tState\tTime(s)")
	if verbose {
		b.WriteString("   UUID                            Reason-Code\tSecurity Label")
	}
	b.WriteByte('\n')
	for _, d := range doms {
		fmt.Fprintf(&b, "%-40s %5d %5d %5d     %s  %8.1f", name(d), d.ID, d.MemMiB, d.VCPUs, XLState(d), d.CPUSeconds)
		if verbose {
			fmt.Fprintf(&b, " %s", d.UUID)
			if d.Shutdown {
				fmt.Fprintf(&b, " %8x", d.ShutdownReason)
			} else {
				fmt.Fprintf(&b, " %8s", "-")
			}
			label := d.Label
			if label == "" {
				label = "-"
			}
			fmt.Fprintf(&b, " %16s", label)
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// XM prints `xm list`.
func XM(doms []Domain) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%-40s %5s %5s %5s %10s %9s\n", "Name", "ID", "Mem", "VCPUs", "State", "Time(s)")
	for _, d := range doms {
		fmt.Fprintf(&b, "%-40s %5s %5d %5d %10s %8.1f\n", name(d), fmt.Sprint(d.ID), d.MemMiB, d.VCPUs, XMState(d), d.CPUSeconds)
	}
	return b.Bytes()
}
