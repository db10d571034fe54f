// Package xen is ganeti-userdown's view of the Xen toolstack: the domains
// `xl list` / `xm list` report, the exact meaning of their state letters,
// and a client that runs the toolstack.
//
// The state model follows the design's "Xen facts" table. Parsing and
// deciding are pure functions; only Client runs commands.
package xen

import "fmt"

// Flavour is the toolstack whose formats and semantics apply.
type Flavour string

// The two toolstacks ganeti-userdown supports.
const (
	XL Flavour = "xl"
	XM Flavour = "xm"
)

// Reason is why a domain shut down, as Xen records it.
type Reason int

// Shutdown reasons. The numeric values of ReasonPoweroff..ReasonSoftReset
// minus one are not Xen's codes; use ReasonFromCode and Reason.Code.
const (
	// ReasonNone: the domain is not shut down.
	ReasonNone Reason = iota
	ReasonPoweroff
	ReasonReboot
	ReasonSuspend
	ReasonCrash
	ReasonWatchdog
	ReasonSoftReset
	// ReasonUnknown: shut down for a reason this code does not know (xl
	// prints '?').
	ReasonUnknown
)

var reasonNames = [...]string{"none", "poweroff", "reboot", "suspend", "crash", "watchdog", "soft_reset", "unknown"}

// String returns the reason as the JSON reports spell it.
func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return fmt.Sprintf("Reason(%d)", int(r))
}

// MarshalText makes reasons readable in JSON.
func (r Reason) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// Code returns Xen's SHUTDOWN_* code (xen/include/public/sched.h) for r,
// or -1 for ReasonNone and ReasonUnknown.
func (r Reason) Code() int {
	switch r {
	case ReasonPoweroff:
		return 0
	case ReasonReboot:
		return 1
	case ReasonSuspend:
		return 2
	case ReasonCrash:
		return 3
	case ReasonWatchdog:
		return 4
	case ReasonSoftReset:
		return 5
	}
	return -1
}

// ReasonFromCode maps Xen's SHUTDOWN_* code to a Reason.
func ReasonFromCode(code int) Reason {
	switch code {
	case 0:
		return ReasonPoweroff
	case 1:
		return ReasonReboot
	case 2:
		return ReasonSuspend
	case 3:
		return ReasonCrash
	case 4:
		return ReasonWatchdog
	case 5:
		return ReasonSoftReset
	}
	return ReasonUnknown
}

// State is the six-letter state column of `xl list` / `xm list`, decoded.
// The flags are independent in Xen (races print combinations such as
// "rb----" or "---s-d"); Reason is set only when the domain is shut down
// (or, with xm, crashed).
type State struct {
	Running  bool // letter 0 'r'
	Blocked  bool // letter 1 'b'
	Paused   bool // letter 2 'p'
	Shutdown bool // letter 3 's'
	Dying    bool // letter 5 'd'
	// Reason is why the domain shut down: from letter 4 and the -v reason
	// code with xl; with xm only ReasonCrash (letter 4 'c') or, for any
	// other shutdown, ReasonPoweroff (xm cannot tell poweroff, reboot in
	// flight and watchdog apart).
	Reason Reason
	// Letters is the column exactly as printed.
	Letters string
}

// Dead reports whether the domain has stopped executing for good and is
// kept only because its action was preserve: shut down or crashed, and not
// already being torn down by Xen.
func (s State) Dead() bool {
	return (s.Shutdown || s.Reason == ReasonCrash) && !s.Dying
}

// UserPoweredOff reports a poweroff shutdown: what a user's `poweroff`
// inside the guest leaves behind when on_poweroff is preserve. Dying
// domains are excluded: Xen is already destroying them.
func (s State) UserPoweredOff() bool {
	return s.Dead() && s.Reason == ReasonPoweroff
}

// Crashed reports a preserved crashed domain.
func (s State) Crashed() bool {
	return s.Dead() && s.Reason == ReasonCrash
}

// GuestFailed reports a crash or a watchdog shutdown: the guest failing,
// not its user's will.
func (s State) GuestFailed() bool {
	return s.Dead() && (s.Reason == ReasonCrash || s.Reason == ReasonWatchdog)
}

// Transient reports a shutdown that is part of an operation in flight:
// suspend (save, migration) or reboot (restart). Never act on it.
func (s State) Transient() bool {
	return s.Shutdown && (s.Reason == ReasonSuspend || s.Reason == ReasonReboot)
}

// Alive reports a domain that is neither shut down, crashed nor dying:
// running, blocked, paused, or merely not scheduled ("------").
func (s State) Alive() bool {
	return !s.Shutdown && s.Reason != ReasonCrash && !s.Dying
}

// Domain is one line of the domain list.
type Domain struct {
	Name       string
	ID         int
	MemMiB     int
	VCPUs      int
	State      State
	UUID       string // empty when the listing does not carry it
	CPUSeconds float64
}

// IsDom0 reports the control domain.
func (d Domain) IsDom0() bool { return d.ID == 0 }
