// Package simlog reads the call log of the Xen simulator (XENSIM_LOG), so
// tests can assert what ran against the simulated node: which commands,
// in which order, and the state of every domain a destroy removed.
//
// The simulator writes two JSON lines per call: a start record (pid, time,
// argv) as soon as it runs, so a call killed at a timeout still appears,
// and an end record (pid, end time, exit code, what happened) when it
// finishes. Read merges them into one Entry per call.
package simlog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"
)

// Domain identifies a domain in the log, with its state letters at that
// moment.
type Domain struct {
	Name  string `json:"name"`
	ID    int    `json:"domid"`
	UUID  string `json:"uuid"`
	State string `json:"state"`
}

// Event is something the simulated Xen did during a call: a guest powering
// off, rebooting, crashing or hitting its watchdog, and the configured
// action Xen then applied ("destroy", "restart", "preserve", "rename",
// "dump", "soft-reset").
type Event struct {
	Time   time.Time `json:"time"`
	What   string    `json:"what"`
	Domain Domain    `json:"domain"`
	Detail string    `json:"detail,omitempty"`
}

// Record is one line of the log file as written.
type Record struct {
	PID     int       `json:"pid"`
	Time    time.Time `json:"time,omitzero"`
	Flavour string    `json:"flavour,omitempty"`
	Argv    []string  `json:"argv,omitempty"`
	// End record fields.
	End       time.Time `json:"end,omitzero"`
	Exit      *int      `json:"exit,omitempty"`
	Destroyed *Domain   `json:"destroyed,omitempty"`
	Events    []Event   `json:"events,omitempty"`
}

// Entry is one call of the simulator.
type Entry struct {
	PID     int
	Time    time.Time // when the call started
	Flavour string    // "xl" or "xm"
	Argv    []string  // arguments after the program name
	// Finished is false when the call has not ended, or was killed (for
	// example `shutdown -w` at its caller's timeout).
	Finished bool
	End      time.Time
	Exit     int
	// Destroyed is, for a successful destroy, the domain as it was
	// right before it was destroyed.
	Destroyed *Domain
	Events    []Event
}

// Verb returns the first argument (the toolstack command), or "".
func (e Entry) Verb() string {
	if len(e.Argv) == 0 {
		return ""
	}
	return e.Argv[0]
}

// String renders the call for test failure messages.
func (e Entry) String() string {
	s := fmt.Sprintf("%s %s", e.Flavour, strings.Join(e.Argv, " "))
	if e.Finished {
		s += fmt.Sprintf(" => %d", e.Exit)
	} else {
		s += " (unfinished)"
	}
	return s
}

// Read parses the log file at path. A missing file is an empty log.
func Read(path string) ([]Entry, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read simulator log: %w", err)
	}
	return Parse(b)
}

// Parse merges the records of a log into entries, in the order the calls
// started.
func Parse(b []byte) ([]Entry, error) {
	var entries []Entry
	open := map[int]int{} // pid -> index of its unfinished entry
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	for n := 1; sc.Scan(); n++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("simulator log line %d: %w", n, err)
		}
		if r.Exit == nil {
			open[r.PID] = len(entries)
			entries = append(entries, Entry{PID: r.PID, Time: r.Time, Flavour: r.Flavour, Argv: r.Argv})
			continue
		}
		i, ok := open[r.PID]
		if !ok {
			return nil, fmt.Errorf("simulator log line %d: end of a call of pid %d that did not start", n, r.PID)
		}
		delete(open, r.PID)
		e := &entries[i]
		e.Finished, e.End, e.Exit, e.Destroyed, e.Events = true, r.End, *r.Exit, r.Destroyed, r.Events
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("simulator log: %w", err)
	}
	return entries, nil
}

// Calls returns the entries whose verb is verb.
func Calls(entries []Entry, verb string) []Entry {
	var out []Entry
	for _, e := range entries {
		if e.Verb() == verb {
			out = append(out, e)
		}
	}
	return out
}

// LiveDestroys returns the successful destroy calls that removed a domain
// that had not stopped for good at that moment: a running, paused,
// rebooting, suspended, soft-resetting, dying domain or one shut down for
// a reason Xen does not name. Tests of ganeti-userdown assert that it never
// causes one. The judgement is the simulator's own (StoppedForGood), not
// ganeti-userdown's.
func LiveDestroys(entries []Entry) ([]Entry, error) {
	var out []Entry
	for _, e := range entries {
		if e.Destroyed == nil {
			continue
		}
		stopped, err := StoppedForGood(e.Flavour, e.Destroyed.State)
		if err != nil {
			return nil, fmt.Errorf("destroy call %v: %w", e, err)
		}
		if !stopped {
			out = append(out, e)
		}
	}
	return out, nil
}

// StoppedForGood reads six state letters as the flavour's toolstack
// prints them and reports a domain that stopped for good: not dying, and
// with xl shut down for poweroff ('-'), crash ('c') or watchdog ('w');
// with xm shut down or crashed.
func StoppedForGood(flavour, letters string) (bool, error) {
	if len(letters) != 6 {
		return false, fmt.Errorf("state %q: want 6 letters", letters)
	}
	if letters[5] == 'd' {
		return false, nil
	}
	switch flavour {
	case "xl":
		return letters[3] == 's' && strings.IndexByte("-cw", letters[4]) >= 0, nil
	case "xm":
		return letters[3] == 's' || letters[4] == 'c', nil
	}
	return false, fmt.Errorf("state %q: unknown flavour %q", letters, flavour)
}
