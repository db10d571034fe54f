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
	// Code is Xen's SHUTDOWN_* code as `xl list -v` printed it in its
	// Reason-Code column, or -1 when the domain is not shut down or the
	// listing has no such column. It keeps reasons this code does not
	// know (ReasonUnknown) apart.
	Code int
}

// reasonLetters are the letters xl prints in position 4 for the shutdown
// codes 0..5 (tools/xl/xl_info.c); any other code prints '?'.
const reasonLetters = "-rscwS"

// xlReasonLetter returns the letter xl prints for a shutdown code.
func xlReasonLetter(code int) byte {
	if code >= 0 && code < len(reasonLetters) {
		return reasonLetters[code]
	}
	return '?'
}

// ParseState decodes a six-letter state column as the flavour's toolstack
// prints it (design.md, "Xen facts"). Every position accepts only its own
// letter or '-'; with xl, position 4 holds the shutdown reason letter
// (-rscwS or ?) and must be '-' unless position 3 says the domain is shut
// down, because xl derives that letter only from a shut-down domain's
// reason; with xm, position 4 is 'c' (crashed) or '-'. Anything else is an
// error: a state this code does not understand must stop decisions rather
// than be guessed at. Code is -1 in the result; ParseList fills it from the
// Reason-Code column when there is one.
func ParseState(f Flavour, letters string) (State, error) {
	if len(letters) != 6 {
		return State{}, fmt.Errorf("state %q: want 6 letters, got %d", letters, len(letters))
	}
	st := State{Letters: letters, Code: -1}
	flags := []struct {
		letter byte
		set    *bool
	}{{'r', &st.Running}, {'b', &st.Blocked}, {'p', &st.Paused}, {'s', &st.Shutdown}}
	for i, fl := range flags {
		switch letters[i] {
		case fl.letter:
			*fl.set = true
		case '-':
		default:
			return State{}, fmt.Errorf("state %q: position %d is %q, want %q or '-'", letters, i, letters[i], fl.letter)
		}
	}
	switch letters[5] {
	case 'd':
		st.Dying = true
	case '-':
	default:
		return State{}, fmt.Errorf("state %q: position 5 is %q, want 'd' or '-'", letters, letters[5])
	}
	r := letters[4]
	switch f {
	case XL:
		if !st.Shutdown {
			if r != '-' {
				return State{}, fmt.Errorf("state %q: shutdown reason %q without the shut-down flag", letters, r)
			}
			return st, nil
		}
		switch r {
		case '-':
			st.Reason = ReasonPoweroff
		case 'r':
			st.Reason = ReasonReboot
		case 's':
			st.Reason = ReasonSuspend
		case 'c':
			st.Reason = ReasonCrash
		case 'w':
			st.Reason = ReasonWatchdog
		case 'S':
			st.Reason = ReasonSoftReset
		case '?':
			st.Reason = ReasonUnknown
		default:
			return State{}, fmt.Errorf("state %q: position 4 is %q, want one of \"-rscwS?\"", letters, r)
		}
	case XM:
		switch r {
		case 'c':
			st.Reason = ReasonCrash
		case '-':
			if st.Shutdown {
				st.Reason = ReasonPoweroff
			}
		default:
			return State{}, fmt.Errorf("state %q: position 4 is %q, want 'c' or '-'", letters, r)
		}
	default:
		return State{}, fmt.Errorf("unknown toolstack flavour %q", f)
	}
	return st, nil
}

// Column returns the six letters the flavour's toolstack prints for s,
// computed from the flags, Reason and (for xl's unknown reasons) Code;
// it ignores s.Letters. With xl the reason letter is printed only for a
// shut-down domain; with xm a crashed domain prints 'c' in position 4.
func (s State) Column(f Flavour) string {
	b := []byte("------")
	if s.Running {
		b[0] = 'r'
	}
	if s.Blocked {
		b[1] = 'b'
	}
	if s.Paused {
		b[2] = 'p'
	}
	if s.Shutdown {
		b[3] = 's'
	}
	if s.Dying {
		b[5] = 'd'
	}
	switch f {
	case XM:
		if s.Reason == ReasonCrash {
			b[4] = 'c'
		}
	default:
		if s.Shutdown {
			b[4] = xlReasonLetter(s.ReasonCode())
		}
	}
	return string(b)
}

// ReasonCode returns the SHUTDOWN_* code xl prints in its Reason-Code
// column for a shut-down domain: Code when known, else Reason.Code(), and
// 0xff for an unknown reason without a code.
func (s State) ReasonCode() int {
	if s.Code >= 0 {
		return s.Code
	}
	if c := s.Reason.Code(); c >= 0 {
		return c
	}
	if s.Reason == ReasonUnknown {
		return 0xff
	}
	return 0
}

// Dead reports whether the domain has stopped executing for good and is
// kept only because its action was preserve: shut down by a poweroff, a
// crash or the watchdog (with xm: shut down or crashed), and not already
// being torn down by Xen. Shutdowns that are part of an operation in flight
// (suspend, reboot: see Transient), a soft reset and reasons this code does
// not know are not dead: the design says never to act on them.
func (s State) Dead() bool {
	if s.Dying {
		return false
	}
	switch s.Reason {
	case ReasonCrash:
		return true
	case ReasonPoweroff, ReasonWatchdog:
		return s.Shutdown
	}
	return false
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
