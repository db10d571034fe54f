// Package xslog reads the request log of the xenstored simulator
// (xenstored -log FILE), so tests can see what clients asked of it: who
// watches what, and when an event went out.
package xslog

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// Entry is one line of the log: a client connecting or going away, one
// request and its outcome, or a watch event fired.
type Entry struct {
	Time time.Time `json:"time"`
	// Op is "start" (the simulator started), "connect", "disconnect",
	// "fire" (Args[0] changed; Watchers watches matched), or a request
	// type as xs_wire.h names it without XS_ ("WATCH", "READ", ...).
	Op       string   `json:"op"`
	Client   int      `json:"client,omitempty"` // numbered from 1 per simulator run
	Args     []string `json:"args,omitempty"`   // the request's NUL-separated strings
	Error    string   `json:"error,omitempty"`  // the errno name of an ERROR reply
	Watchers int      `json:"watchers,omitempty"`
}

// Read returns every entry of the log at path.
func Read(path string) ([]Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Entry
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; s.Scan(); n++ {
		var e Entry
		if err := json.Unmarshal(s.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		out = append(out, e)
	}
	return out, s.Err()
}

// SinceStart returns the entries after the last "start": those of the
// running simulator.
func SinceStart(es []Entry) []Entry {
	for i := len(es) - 1; i >= 0; i-- {
		if es[i].Op == "start" {
			return es[i+1:]
		}
	}
	return es
}

// Watching reports whether, in the entries of one simulator run, a client
// still connected has a watch on path.
func Watching(es []Entry, path string) bool {
	watching := map[int]int{}
	for _, e := range es {
		switch {
		case e.Op == "WATCH" && e.Error == "" && len(e.Args) > 0 && e.Args[0] == path:
			watching[e.Client]++
		case e.Op == "UNWATCH" && e.Error == "" && len(e.Args) > 0 && e.Args[0] == path:
			watching[e.Client]--
		case e.Op == "RESET_WATCHES" || e.Op == "disconnect":
			delete(watching, e.Client)
		}
	}
	for _, n := range watching {
		if n > 0 {
			return true
		}
	}
	return false
}
