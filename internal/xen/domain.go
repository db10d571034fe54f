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

// Shutdown reasons. Their numeric values are not Xen's codes; use
// ReasonFromCode.
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

// Class is the one classification of a domain's state that every
// decision switches on (design.md, "Xen facts", "Domain state
// classification"). Safety rule 1 ("never destroy a domain that is not
// shut down or crashed") is: only ClassStopped may be destroyed.
type Class int

// The classes, exhaustive: every State is exactly one of them.
const (
	// ClassUnknown: shut down for a reason this code does not name (xl's
	// '?', a reason code above 5), or a shut-down state without a reason.
	// Never acted on.
	ClassUnknown Class = iota
	// ClassAlive: neither shut down, crashed nor dying: running, blocked,
	// paused, or merely not scheduled ("------").
	ClassAlive
	// ClassInFlight: shut down as part of an operation Xen or the
	// toolstack completes: suspend (save, migration), reboot, soft reset.
	ClassInFlight
	// ClassStopped: stopped for good and kept only because its action was
	// preserve: powered off, crashed or stopped by its watchdog (with xm:
	// shut down or crashed). The only class that may be destroyed.
	ClassStopped
	// ClassDying: Xen is already tearing the domain down.
	ClassDying
)

var classNames = [...]string{"unknown", "alive", "in-flight", "stopped", "dying"}

// String returns the class as the design and the logs spell it.
func (c Class) String() string {
	if c >= 0 && int(c) < len(classNames) {
		return classNames[c]
	}
	return fmt.Sprintf("Class(%d)", int(c))
}

// MarshalText makes classes readable in JSON.
func (c Class) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// Class classifies s. Dying wins over everything; a domain neither shut
// down nor crashed is alive; a shut-down (or, with xm, crashed) domain is
// classed by its reason.
func (s State) Class() Class {
	switch {
	case s.Dying:
		return ClassDying
	case !s.Shutdown && s.Reason != ReasonCrash:
		return ClassAlive
	}
	switch s.Reason {
	case ReasonPoweroff, ReasonCrash, ReasonWatchdog:
		return ClassStopped
	case ReasonSuspend, ReasonReboot, ReasonSoftReset:
		return ClassInFlight
	}
	return ClassUnknown
}

// Describe says in a few words what state s is in, for the reasons
// decisions and refusals give: "alive (r-----)", "in-flight: suspend
// (---ss-)", "stopped: poweroff (---s--)".
func (s State) Describe() string {
	c := s.Class()
	switch c {
	case ClassInFlight, ClassStopped, ClassUnknown:
		return fmt.Sprintf("%s: %s (%s)", c, s.Reason, s.Letters)
	}
	return fmt.Sprintf("%s (%s)", c, s.Letters)
}

// Alive reports ClassAlive.
func (s State) Alive() bool { return s.Class() == ClassAlive }

// Dead reports ClassStopped: stopped for good, the only state that may be
// destroyed.
func (s State) Dead() bool { return s.Class() == ClassStopped }

// UserPoweredOff reports a poweroff stopped for good: what a user's
// `poweroff` inside the guest leaves behind when on_poweroff is preserve.
func (s State) UserPoweredOff() bool { return s.Dead() && s.Reason == ReasonPoweroff }

// Crashed reports a preserved crashed domain.
func (s State) Crashed() bool { return s.Dead() && s.Reason == ReasonCrash }

// GuestFailed reports a crash or a watchdog shutdown stopped for good: the
// guest failing, not its user's will.
func (s State) GuestFailed() bool {
	return s.Dead() && (s.Reason == ReasonCrash || s.Reason == ReasonWatchdog)
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
