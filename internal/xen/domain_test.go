package xen

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
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
				if col := st.Column(f); col != letters {
					t.Errorf("%s %q: Column() = %q", f, letters, col)
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

// TestStatePredicates checks the predicates on the states of the design's
// table, the states Xen prints in races, and the matrix Ganeti 3.0.2 was
// observed with (ganeti-3.0.2/xen-state-matrix.txt).
// Reference: design.md, "Xen facts": "with xl, `---s--` is a powered-off
// domain and `---sc-` (or `--psc-`) a crashed one; with xm, `---s--` is shut
// down ... and `----c-` crashed. Suspend (`ss`) and reboot (`sr`) are
// transient states of migration and restart: never act on them."
// And "Decisions": "Soft reset, an unknown reason (`?`) and dying domains:
// `wait`, never act."
func TestStatePredicates(t *testing.T) {
	type preds struct {
		Dead, UserPoweredOff, Crashed, GuestFailed, Transient, Alive bool
	}
	for _, tc := range []struct {
		f       Flavour
		letters string
		want    preds
	}{
		{XL, "r-----", preds{Alive: true}},
		{XL, "-b----", preds{Alive: true}},
		{XL, "--p---", preds{Alive: true}},
		{XL, "-bp---", preds{Alive: true}},
		{XL, "------", preds{Alive: true}},
		{XL, "rb----", preds{Alive: true}}, // race: running and blocked
		{XL, "rbp---", preds{Alive: true}},
		{XL, "---s--", preds{Dead: true, UserPoweredOff: true}},
		{XL, "--ps--", preds{Dead: true, UserPoweredOff: true}},
		{XL, "r--s--", preds{Dead: true, UserPoweredOff: true}}, // race: still marked running
		{XL, "---s-d", preds{}},                                 // race: shut down and dying
		{XL, "-----d", preds{}},                                 // dying
		{XL, "---sc-", preds{Dead: true, Crashed: true, GuestFailed: true}},
		{XL, "--psc-", preds{Dead: true, Crashed: true, GuestFailed: true}}, // race
		{XL, "--pscd", preds{}},
		{XL, "---sw-", preds{Dead: true, GuestFailed: true}},
		{XL, "---sr-", preds{Transient: true}},
		{XL, "---ss-", preds{Transient: true}},
		{XL, "--pss-", preds{Transient: true}},
		{XL, "---sS-", preds{}},
		{XL, "---s?-", preds{}},
		{XM, "r-----", preds{Alive: true}},
		{XM, "-b----", preds{Alive: true}},
		{XM, "rb----", preds{Alive: true}},
		{XM, "---s--", preds{Dead: true, UserPoweredOff: true}},
		{XM, "---s-d", preds{}},
		{XM, "-----d", preds{}},
		{XM, "----c-", preds{Dead: true, Crashed: true, GuestFailed: true}},
		{XM, "--p-c-", preds{Dead: true, Crashed: true, GuestFailed: true}},
		{XM, "---sc-", preds{Dead: true, Crashed: true, GuestFailed: true}},
		{XM, "----cd", preds{}},
	} {
		t.Run(fmt.Sprintf("%s/%s", tc.f, tc.letters), func(t *testing.T) {
			st, err := ParseState(tc.f, tc.letters)
			if err != nil {
				t.Fatal(err)
			}
			got := preds{st.Dead(), st.UserPoweredOff(), st.Crashed(), st.GuestFailed(), st.Transient(), st.Alive()}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("predicates (-want +got):\n%s", diff)
			}
			// Never both alive and dead: destroy acts only on Dead().
			if got.Alive && got.Dead {
				t.Errorf("both Alive and Dead")
			}
		})
	}
}

func TestReasonCodes(t *testing.T) {
	for code := 0; code <= 5; code++ {
		r := ReasonFromCode(code)
		if r.Code() != code {
			t.Errorf("ReasonFromCode(%d).Code() = %d", code, r.Code())
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
