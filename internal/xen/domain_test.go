package xen

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"ganeti-userdown/testdata/xensim/xlout"
)

// TestParseStateEveryLetterEveryPosition tries every printable ASCII
// letter in every position of an otherwise empty state column (and, for
// position 4, of a shut-down one) and checks that exactly the letters the
// design's table lists are accepted, with the meaning it gives them.
// Reference: design.md, "Xen facts": the six state letters table.
func TestParseStateEveryLetterEveryPosition(t *testing.T) {
	type want struct {
		flag   string // which flag the letter sets
		reason Reason
	}
	accepted := map[Flavour]map[int]map[byte]want{
		XL: {
			0: {'r': {flag: "running"}},
			1: {'b': {flag: "blocked"}},
			2: {'p': {flag: "paused"}},
			3: {'s': {flag: "shutdown", reason: ReasonPoweroff}},
			// Position 4 is probed with 's' in position 3 (see below).
			4: {
				'-': {flag: "shutdown", reason: ReasonPoweroff},
				'r': {flag: "shutdown", reason: ReasonReboot},
				's': {flag: "shutdown", reason: ReasonSuspend},
				'c': {flag: "shutdown", reason: ReasonCrash},
				'w': {flag: "shutdown", reason: ReasonWatchdog},
				'S': {flag: "shutdown", reason: ReasonSoftReset},
				'?': {flag: "shutdown", reason: ReasonUnknown},
			},
			5: {'d': {flag: "dying"}},
		},
		XM: {
			0: {'r': {flag: "running"}},
			1: {'b': {flag: "blocked"}},
			2: {'p': {flag: "paused"}},
			3: {'s': {flag: "shutdown", reason: ReasonPoweroff}},
			4: {'c': {reason: ReasonCrash}},
			5: {'d': {flag: "dying"}},
		},
	}
	for _, f := range []Flavour{XL, XM} {
		for pos := 0; pos < 6; pos++ {
			for c := byte(0x21); c < 0x7f; c++ {
				b := []byte("------")
				if f == XL && pos == 4 {
					b[3] = 's'
				}
				b[pos] = c
				letters := string(b)
				st, err := ParseState(f, letters)
				w, ok := accepted[f][pos][c]
				if c == '-' && !(f == XL && pos == 4) {
					// '-' is always accepted; nothing set.
					if err != nil {
						t.Errorf("%s %q: %v", f, letters, err)
					} else if st.Running || st.Blocked || st.Paused || st.Shutdown || st.Dying || st.Reason != ReasonNone {
						t.Errorf("%s %q: got %+v, want nothing set", f, letters, st)
					}
					continue
				}
				if !ok {
					if err == nil {
						t.Errorf("%s %q: accepted as %+v, want an error", f, letters, st)
					}
					continue
				}
				if err != nil {
					t.Errorf("%s %q: %v", f, letters, err)
					continue
				}
				got := want{reason: st.Reason}
				switch {
				case st.Running:
					got.flag = "running"
				case st.Blocked:
					got.flag = "blocked"
				case st.Paused:
					got.flag = "paused"
				case st.Shutdown:
					got.flag = "shutdown"
				case st.Dying:
					got.flag = "dying"
				}
				if got != w {
					t.Errorf("%s %q: got %+v, want %+v", f, letters, got, w)
				}
				if st.Letters != letters || st.Code != -1 {
					t.Errorf("%s %q: Letters %q Code %d", f, letters, st.Letters, st.Code)
				}
				if col := printed(f, st); col != letters {
					t.Errorf("%s %q: the simulator's printer makes %q of it", f, letters, col)
				}
			}
		}
	}
}

// TestParseStateRejects covers malformed columns and letters xl cannot
// print: a reason letter without the shut-down flag.
// Reference: design.md, "Decisions", safety rule 4: "When Xen or cluster
// state cannot be read or parsed, do nothing and say so."
func TestParseStateRejects(t *testing.T) {
	for _, tc := range []struct {
		f       Flavour
		letters string
	}{
		{XL, ""}, {XL, "--"}, {XL, "-------"}, {XL, "r----"},
		{XL, "----c-"}, {XL, "----r-"}, {XL, "----?-"}, {XL, "----w-"},
		{XM, "---sr-"}, {XM, "---sw-"}, {XM, "--"},
		{"kvm", "r-----"},
	} {
		if st, err := ParseState(tc.f, tc.letters); err == nil {
			t.Errorf("%s %q: accepted as %+v", tc.f, tc.letters, st)
		}
	}
}

// TestStateClass checks the one classification and the predicates derived
// from it on the states of the design's table, the states Xen prints in
// races, and the matrix Ganeti 3.0.2 was observed with
// (ganeti-3.0.2/xen-state-matrix.txt).
// Reference: doc/design.md, "Xen facts the code must get exactly right",
// "Domain state classification" (the table), and "Decisions", safety rule
// 1: only class stopped may be destroyed.
func TestStateClass(t *testing.T) {
	type preds struct {
		Class                                             Class
		Dead, UserPoweredOff, Crashed, GuestFailed, Alive bool
	}
	alive := preds{Class: ClassAlive, Alive: true}
	poweroff := preds{Class: ClassStopped, Dead: true, UserPoweredOff: true}
	crash := preds{Class: ClassStopped, Dead: true, Crashed: true, GuestFailed: true}
	inFlight, dying, unknown := preds{Class: ClassInFlight}, preds{Class: ClassDying}, preds{Class: ClassUnknown}
	for _, tc := range []struct {
		f       Flavour
		letters string
		want    preds
	}{
		{XL, "r-----", alive},
		{XL, "-b----", alive},
		{XL, "--p---", alive},
		{XL, "-bp---", alive},
		{XL, "------", alive},
		{XL, "rb----", alive}, // race: running and blocked
		{XL, "rbp---", alive},
		{XL, "---s--", poweroff},
		{XL, "--ps--", poweroff},
		{XL, "r--s--", poweroff}, // race: still marked running
		{XL, "---s-d", dying},    // race: shut down and dying
		{XL, "-----d", dying},
		{XL, "r----d", dying},
		{XL, "---sc-", crash},
		{XL, "--psc-", crash}, // race
		{XL, "--pscd", dying},
		{XL, "---sw-", preds{Class: ClassStopped, Dead: true, GuestFailed: true}},
		{XL, "---sr-", inFlight},
		{XL, "---ss-", inFlight},
		{XL, "--pss-", inFlight},
		{XL, "---sS-", inFlight},
		{XL, "---s?-", unknown},
		{XM, "r-----", alive},
		{XM, "-b----", alive},
		{XM, "rb----", alive},
		{XM, "---s--", poweroff},
		{XM, "---s-d", dying},
		{XM, "-----d", dying},
		{XM, "----c-", crash},
		{XM, "--p-c-", crash},
		{XM, "---sc-", crash},
		{XM, "----cd", dying},
	} {
		t.Run(fmt.Sprintf("%s/%s", tc.f, tc.letters), func(t *testing.T) {
			st, err := ParseState(tc.f, tc.letters)
			if err != nil {
				t.Fatal(err)
			}
			got := preds{st.Class(), st.Dead(), st.UserPoweredOff(), st.Crashed(), st.GuestFailed(), st.Alive()}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("classification (-want +got):\n%s", diff)
			}
		})
	}
}

// TestStateClassExhaustive: every combination of flags and reasons, also
// ones ParseState never returns, is exactly one class, and only class
// stopped is dead.
func TestStateClassExhaustive(t *testing.T) {
	for bits := 0; bits < 1<<5; bits++ {
		for r := ReasonNone; r <= ReasonUnknown+1; r++ {
			st := State{Running: bits&1 != 0, Blocked: bits&2 != 0, Paused: bits&4 != 0, Shutdown: bits&8 != 0, Dying: bits&16 != 0, Reason: r}
			c := st.Class()
			if c < ClassUnknown || c > ClassDying {
				t.Fatalf("%+v: class %v", st, c)
			}
			if st.Dead() != (c == ClassStopped) || st.Alive() != (c == ClassAlive) {
				t.Errorf("%+v: class %v, Dead %v, Alive %v", st, c, st.Dead(), st.Alive())
			}
			if st.Dying && c != ClassDying {
				t.Errorf("%+v: dying but class %v", st, c)
			}
			if st.Shutdown && !st.Dying && r == ReasonNone && c != ClassUnknown {
				t.Errorf("%+v: shut down without a reason, class %v", st, c)
			}
		}
	}
	if got := ClassInFlight.String() + "," + Class(9).String(); got != "in-flight,Class(9)" {
		t.Errorf("names: %s", got)
	}
}

func TestReasonCodes(t *testing.T) {
	for code := 0; code <= 5; code++ {
		r := ReasonFromCode(code)
		if r == ReasonUnknown || r == ReasonNone || reasonCodes[r] != code {
			t.Errorf("ReasonFromCode(%d) = %v", code, r)
		}
		if got := xlReasonLetter(code); got != "-rscwS"[code] {
			t.Errorf("letter for %d = %q", code, got)
		}
	}
	for _, code := range []int{-1, 6, 7, 0xff} {
		if r := ReasonFromCode(code); r != ReasonUnknown {
			t.Errorf("ReasonFromCode(%d) = %v", code, r)
		}
		if got := xlReasonLetter(code); got != '?' {
			t.Errorf("letter for %d = %q", code, got)
		}
	}
	if got := strings.Join([]string{ReasonNone.String(), ReasonSoftReset.String(), Reason(42).String()}, ","); got != "none,soft_reset,Reason(42)" {
		t.Errorf("names: %s", got)
	}
}

// reasonCodes are Xen's SHUTDOWN_* codes (xen/include/public/sched.h) of
// the reasons, for the tests; 0xff stands for a code Xen does not name.
var reasonCodes = map[Reason]int{
	ReasonPoweroff: 0, ReasonReboot: 1, ReasonSuspend: 2, ReasonCrash: 3,
	ReasonWatchdog: 4, ReasonSoftReset: 5, ReasonUnknown: 0xff,
}

// out returns st as the Xen simulator's printer (testdata/xensim/xlout),
// written from xl's and xm's own format strings, sees a domain.
func out(f Flavour, st State) xlout.Domain {
	d := xlout.Domain{Running: st.Running, Blocked: st.Blocked, Paused: st.Paused, Shutdown: st.Shutdown, Dying: st.Dying}
	switch {
	case f == XM:
		d.Crashed = st.Reason == ReasonCrash
	case st.Code >= 0:
		d.ShutdownReason = st.Code
	default:
		d.ShutdownReason = reasonCodes[st.Reason]
	}
	return d
}

// printed returns the letters the simulator's printer makes of st.
func printed(f Flavour, st State) string {
	if f == XM {
		return xlout.XMState(out(f, st))
	}
	return xlout.XLState(out(f, st))
}
