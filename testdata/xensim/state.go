package main

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"ganeti-userdown/testdata/xensim/simlog"
	"ganeti-userdown/testdata/xensim/xlout"
)

// domain is one simulated Xen domain as kept in the state file.
type domain struct {
	Name    string            `json:"name"`
	ID      int               `json:"domid"`
	UUID    string            `json:"uuid"`
	MemMiB  int               `json:"mem_mib"`
	VCPUs   int               `json:"vcpus"`
	Config  string            `json:"config,omitempty"` // path given to create
	Source  string            `json:"source,omitempty"` // config text (with extra key=value lines), for restarts
	Actions map[string]string `json:"actions"`          // on_poweroff... in xl.cfg spelling

	Running  bool `json:"running"`
	Blocked  bool `json:"blocked"`
	Paused   bool `json:"paused"`
	Shutdown bool `json:"shutdown"`
	Dying    bool `json:"dying"`
	// Code is the SHUTDOWN_* code of the last shutdown, -1 while alive.
	// With xm a crashed domain has Code 3 and no Shutdown flag.
	Code int `json:"reason_code"`

	Created time.Time  `json:"created"`
	Stopped *time.Time `json:"stopped,omitempty"`

	// Guest behaviour knobs (`sim set`).
	ShutdownDelay  string `json:"shutdown_delay,omitempty"` // time the guest takes to act on a shutdown or reboot request
	IgnoreShutdown bool   `json:"ignore_shutdown,omitempty"`
	// Pending is a shutdown or reboot the toolstack asked for and the guest
	// has not carried out yet.
	Pending *pending `json:"pending,omitempty"`
}

type pending struct {
	Code      int       `json:"code"` // 0 poweroff, 1 reboot
	Requested time.Time `json:"requested"`
	Due       time.Time `json:"due"`
}

// state is the whole simulated node.
type state struct {
	NextID  int       `json:"next_id"`
	Domains []*domain `json:"domains"`
}

func (st *state) byID(id int) *domain {
	for _, d := range st.Domains {
		if d.ID == id {
			return d
		}
	}
	return nil
}

func (st *state) byName(name string) *domain {
	for _, d := range st.Domains {
		if d.Name == name {
			return d
		}
	}
	return nil
}

func (st *state) remove(d *domain) {
	for i, x := range st.Domains {
		if x == d {
			st.Domains = append(st.Domains[:i], st.Domains[i+1:]...)
			return
		}
	}
}

func newState(now time.Time) *state {
	return &state{NextID: 1, Domains: []*domain{{
		Name: "Domain-0", ID: 0, UUID: "00000000-0000-0000-0000-000000000000",
		MemMiB: 2048, VCPUs: 2, Running: true, Code: -1, Created: now,
		Actions: map[string]string{},
	}}}
}

// out returns the domain as the toolstack's list printer sees it: with
// xl a crash is a shutdown with reason 3; with xm it is xend's crashed
// flag, without the shut-down flag.
func (d *domain) out(f flavour, now time.Time) xlout.Domain {
	end := now
	if d.Stopped != nil {
		end = *d.Stopped
	}
	cpu := end.Sub(d.Created).Seconds() / 100
	if cpu < 0 {
		cpu = 0
	}
	o := xlout.Domain{
		Name: d.Name, ID: d.ID, MemMiB: d.MemMiB, VCPUs: d.VCPUs,
		Running: d.Running, Blocked: d.Blocked, Paused: d.Paused, Shutdown: d.Shutdown, Dying: d.Dying,
		CPUSeconds: cpu, UUID: d.UUID,
	}
	if d.Shutdown {
		o.ShutdownReason = d.Code
	}
	if f == flavourXM && d.Code == 3 {
		o.Crashed = true
	}
	return o
}

// letters returns the six state letters the flavour's toolstack prints.
func (d *domain) letters(f flavour) string {
	o := d.out(f, time.Time{})
	if f == flavourXM {
		return xlout.XMState(o)
	}
	return xlout.XLState(o)
}

func (d *domain) ref(f flavour) simlog.Domain {
	return simlog.Domain{Name: d.Name, ID: d.ID, UUID: d.UUID, State: d.letters(f)}
}

// setLetters puts the domain in the state the six letters describe, read
// as the flavour's toolstack prints them (`sim set DOM state=...`): xl's
// position 4 is the reason letter of a shut-down domain, xm's the crashed
// flag.
func (d *domain) setLetters(f flavour, v string) error {
	if len(v) != 6 {
		return fmt.Errorf("state %q: want 6 letters", v)
	}
	want := "rbps?d"
	if f == flavourXM {
		want = "rbpscd"
	}
	var on [6]bool
	for i := 0; i < 6; i++ {
		switch {
		case v[i] == '-':
		case v[i] == want[i], i == 4 && f == flavourXL && strings.IndexByte("rscwS?", v[i]) >= 0:
			on[i] = true
		default:
			return fmt.Errorf("state %q: letter %d is %q", v, i, v[i])
		}
	}
	d.Running, d.Blocked, d.Paused, d.Shutdown, d.Dying = on[0], on[1], on[2], on[3], on[5]
	d.Code = -1
	switch {
	case f == flavourXM && on[4]:
		d.Code = 3
	case f == flavourXL && d.Shutdown:
		d.Code = strings.IndexByte("-rscwS", v[4])
		if d.Code < 0 {
			d.Code = 0xff
		}
	case f == flavourXL && on[4]:
		return fmt.Errorf("state %q: a reason without the shut-down flag", v)
	case d.Shutdown:
		d.Code = 0
	}
	return nil
}

// alive reports a domain whose guest still runs: not shut down, crashed or
// dying.
func (d *domain) alive() bool { return !d.Shutdown && d.Code < 0 && !d.Dying }

func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// store is the state file and its lock.
type store struct {
	path string
	lock *os.File
}

// lockState takes the exclusive lock of the state file (a sibling
// ".lock" file, so that the state itself can be replaced atomically) and
// loads the state, creating it with dom0 when the file does not exist.
func lockState(path string, now time.Time) (*store, *state, error) {
	lf, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("open lock: %w", err)
	}
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		lf.Close()
		return nil, nil, fmt.Errorf("lock %s: %w", lf.Name(), err)
	}
	s := &store{path: path, lock: lf}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, newState(now), nil
	}
	if err != nil {
		s.unlock()
		return nil, nil, fmt.Errorf("read state: %w", err)
	}
	st := &state{}
	if err := json.Unmarshal(b, st); err != nil {
		s.unlock()
		return nil, nil, fmt.Errorf("state %s: %w", path, err)
	}
	return s, st, nil
}

// save replaces the state file atomically.
func (s *store) save(st *state) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.path), ".xensim-state-*")
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("save state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("save state: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}

func (s *store) unlock() {
	syscall.Flock(int(s.lock.Fd()), syscall.LOCK_UN)
	s.lock.Close()
}
