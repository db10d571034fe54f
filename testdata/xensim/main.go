// Command xensim is a stateful stand-in for the Xen toolstacks `xl` and
// `xm`, for ganeti-userdown's end-to-end tests and demo. Called as xl (or
// xm; XENSIM_FLAVOUR=xl|xm overrides the program name) it keeps the
// node's domains in the JSON file named by XENSIM_STATE, under an
// exclusive file lock, and prints what that toolstack prints, byte for
// byte where ganeti-userdown or Ganeti read it.
//
// Toolstack verbs:
//
//	create [-p] [-q] [-f CFG] [CFG] [key=value...]
//	list [-l] [-v] [DOM]
//	shutdown [-w] [-a] [-F] DOM      reboot [-w] DOM
//	destroy DOM     dump-core DOM FILE     rename OLD NEW
//	pause DOM       unpause DOM            info
//	migrate [-s SSHCMD] [-C CFG] DOM HOST  migrate-receive   (xl only)
//
// Test verbs, playing the guest and the node:
//
//	sim poweroff|reboot|crash|watchdog|soft-reset DOM
//	sim set DOM shutdown-delay=2s|ignore-shutdown=true|state=---s--...
//	sim state
//
// A guest asked to shut down or reboot acts after its shutdown-delay
// (per domain, else XENSIM_SHUTDOWN_DELAY, else at once), unless it ignores
// shutdown requests; such transitions are applied lazily by every call.
// When the guest powers off, reboots, crashes or hits its watchdog, the
// action its config set applies as Xen applies it: destroy removes the
// domain, restart starts it again under a new domid, preserve keeps it
// shut down, coredump-* first writes a dump under XENSIM_DUMP_DIR (default:
// "dump" beside the state file).
//
// XENSIM_LOG names a file that gets two JSON lines per call (see package
// simlog). XENSTORED_PATH names the socket of the xenstored simulator
// (testdata/xenstored) to tell of every domain shut down, crashed,
// destroyed or created, as the hypervisor tells xenstored (xenstore.go).
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"ganeti-userdown/testdata/xensim/simlog"
)

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// sim is one invocation of the simulator.
type sim struct {
	flavour   flavour
	statePath string
	dumpDir   string
	stdout    io.Writer
	stderr    io.Writer
	// What happened during this call, for the call log.
	events    []simlog.Event
	destroyed *simlog.Domain
}

// exitError ends a verb with a message on stderr and an exit code.
type exitError struct {
	code int
	msg  string
}

// Error returns the text the toolstack prints.
func (e *exitError) Error() string { return e.msg }

func fail(code int, format string, a ...any) error {
	return &exitError{code: code, msg: fmt.Sprintf(format, a...)}
}

// flavour is the toolstack the simulator plays.
type flavour string

// The two toolstacks.
const (
	flavourXL flavour = "xl"
	flavourXM flavour = "xm"
)

func flavourOf(argv0 string) flavour {
	switch os.Getenv("XENSIM_FLAVOUR") {
	case "xm":
		return flavourXM
	case "xl":
		return flavourXL
	}
	if strings.Contains(filepath.Base(argv0), "xm") {
		return flavourXM
	}
	return flavourXL
}

func run(argv []string, stdout, stderr io.Writer) int {
	s := &sim{flavour: flavourOf(argv[0]), statePath: os.Getenv("XENSIM_STATE"), stdout: stdout, stderr: stderr}
	args := argv[1:]
	logPath := os.Getenv("XENSIM_LOG")
	start := time.Now()
	if logPath != "" {
		writeLog(logPath, simlog.Record{PID: os.Getpid(), Time: start, Flavour: string(s.flavour), Argv: args})
	}
	code := s.dispatch(args)
	if logPath != "" {
		writeLog(logPath, simlog.Record{PID: os.Getpid(), End: time.Now(), Exit: &code, Destroyed: s.destroyed, Events: s.events})
	}
	return code
}

func writeLog(path string, r simlog.Record) {
	b, err := json.Marshal(r)
	if err != nil {
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintf(os.Stderr, "xensim: call log: %v\n", err)
		return
	}
	defer f.Close()
	syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
	f.Write(append(b, '\n'))
}

func (s *sim) dispatch(args []string) int {
	if s.statePath == "" {
		fmt.Fprintln(s.stderr, "xensim: XENSIM_STATE must name the state file")
		return 2
	}
	s.dumpDir = os.Getenv("XENSIM_DUMP_DIR")
	if s.dumpDir == "" {
		s.dumpDir = filepath.Join(filepath.Dir(s.statePath), "dump")
	}
	if len(args) == 0 {
		fmt.Fprintf(s.stderr, "Usage %s [-v] <subcommand> [args]\n", s.flavour)
		return 1
	}
	verbs := map[string]func([]string) error{
		"create":    s.create,
		"list":      s.list,
		"shutdown":  func(a []string) error { return s.shutdown(a, 0) },
		"reboot":    func(a []string) error { return s.shutdown(a, 1) },
		"destroy":   s.destroy,
		"dump-core": s.dumpCore,
		"rename":    s.rename,
		"pause":     func(a []string) error { return s.pause(a, true) },
		"unpause":   func(a []string) error { return s.pause(a, false) },
		"info":      s.info,
		"sim":       s.simVerb,
		// Between two simulated nodes: migrate.go.
		"migrate":         s.migrate,
		"migrate-receive": s.migrateReceive,
	}
	fn, ok := verbs[args[0]]
	if !ok {
		fmt.Fprintf(s.stderr, "command not implemented\n")
		return 1
	}
	err := fn(args[1:])
	var ee *exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		fmt.Fprint(s.stderr, ee.msg)
		return ee.code
	default:
		fmt.Fprintf(s.stderr, "xensim: %v\n", err)
		return 125
	}
}

// locked runs fn on the state under the lock, after applying the guests'
// time-based transitions, and saves the state.
func (s *sim) locked(fn func(st *state, now time.Time) error) error {
	now := time.Now()
	store, st, err := lockState(s.statePath, now)
	if err != nil {
		return err
	}
	defer store.unlock()
	seen := len(s.events)
	s.settle(st, now)
	fnErr := fn(st, now)
	if err := store.save(st); err != nil {
		return err
	}
	s.notifyXenstored(s.events[seen:])
	return fnErr
}

// settle applies every pending guest shutdown whose time has come.
func (s *sim) settle(st *state, now time.Time) {
	for _, d := range append([]*domain(nil), st.Domains...) {
		p := d.Pending
		if p == nil || d.IgnoreShutdown || d.Paused || !d.alive() || now.Before(p.Due) {
			continue
		}
		d.Pending = nil
		s.guestShutdown(st, d, p.Code, p.Due)
	}
}

var reasonVerb = map[int]string{0: "poweroff", 1: "reboot", 2: "suspend", 3: "crash", 4: "watchdog", 5: "soft-reset"}

// actionKey is the config key whose action applies to a shutdown code.
func actionKey(code int) string {
	switch code {
	case 0:
		return "on_poweroff"
	case 1:
		return "on_reboot"
	case 3:
		return "on_crash"
	case 4:
		return "on_watchdog"
	case 5:
		return "on_soft_reset"
	}
	return ""
}

func (s *sim) event(what string, d *domain, at time.Time, detail string) {
	s.events = append(s.events, simlog.Event{Time: at, What: what, Domain: d.ref(s.flavour), Detail: detail})
}

// guestShutdown is the guest of d shutting down with code, and Xen (the
// toolstack's monitor) applying the domain's configured action.
func (s *sim) guestShutdown(st *state, d *domain, code int, at time.Time) {
	s.event(reasonVerb[code], d, at, "")
	action := "destroy"
	if code == 2 {
		action = "preserve" // suspended: left for the saving toolstack
	} else if k := actionKey(code); k != "" {
		if s.flavour == flavourXM && code == 4 {
			k = "on_poweroff" // xm has no on_watchdog: it looks like a poweroff
		}
		action = d.Actions[k]
	}
	if strings.HasPrefix(action, "coredump-") {
		path := filepath.Join(s.dumpDir, d.Name)
		if err := writeCore(path, d); err != nil {
			s.event("dump-failed", d, at, err.Error())
		} else {
			s.event("dump", d, at, path)
		}
		action = strings.TrimPrefix(action, "coredump-")
	}
	switch action {
	case "preserve":
		s.markShutdown(d, code, at)
		s.event("preserve", d, at, "")
	case "restart":
		st.remove(d)
		s.event("destroy", d, at, "")
		nd := s.restart(st, d, d.Name, d.UUID, at)
		s.event("restart", nd, at, strconv.Itoa(d.ID))
	case "rename-restart":
		name, uuid := d.Name, d.UUID
		s.markShutdown(d, code, at)
		d.Name += at.UTC().Format("-20060102T1504Z")
		d.UUID = newUUID()
		s.event("rename", d, at, name)
		nd := s.restart(st, d, name, uuid, at)
		s.event("restart", nd, at, strconv.Itoa(d.ID))
	case "soft-reset":
		d.Pending = nil
		s.event("soft-reset", d, at, "")
	default: // destroy
		st.remove(d)
		s.event("destroy", d, at, "")
	}
}

func (s *sim) markShutdown(d *domain, code int, at time.Time) {
	d.Running, d.Blocked, d.Paused = false, false, false
	// xm clears the shut-down flag of a crashed domain (design.md).
	d.Shutdown = !(s.flavour == flavourXM && code == 3)
	d.Code = code
	d.Pending = nil
	t := at
	d.Stopped = &t
}

// restart starts a new incarnation of d's config under a new domid.
func (s *sim) restart(st *state, d *domain, name, uuid string, at time.Time) *domain {
	nd := &domain{
		Name: name, ID: st.NextID, UUID: uuid, MemMiB: d.MemMiB, VCPUs: d.VCPUs,
		Config: d.Config, Source: d.Source, Actions: d.Actions,
		Blocked: true, Code: -1, Created: at,
		ShutdownDelay: d.ShutdownDelay, IgnoreShutdown: d.IgnoreShutdown,
	}
	st.NextID++
	st.Domains = append(st.Domains, nd)
	return nd
}

func writeCore(path string, d *domain) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, fmt.Appendf(nil, "XENSIM CORE name=%s domid=%d uuid=%s\n", d.Name, d.ID, d.UUID), 0o600)
}

// find resolves a domain qualifier (a name, or a domid when all digits)
// as the toolstack does, failing with its exact message and exit code.
// verb names the command for messages that include it.
func (s *sim) find(st *state, q string) (*domain, error) {
	if id, ok := domid(q); ok {
		if d := st.byID(id); d != nil {
			return d, nil
		}
		if s.flavour == flavourXM {
			return nil, fail(1, "Error: Domain '%s' does not exist.\n", q)
		}
		return nil, errNoDomid{id}
	}
	if d := st.byName(q); d != nil {
		return d, nil
	}
	if s.flavour == flavourXM {
		return nil, fail(1, "Error: Domain '%s' does not exist.\n", q)
	}
	return nil, fail(1, "%s is an invalid domain identifier (rc=-6)\n", q)
}

// errNoDomid is a numeric qualifier naming no domain: xl accepts it and
// the command then fails in its own way.
type errNoDomid struct{ id int }

// Error names the missing domid.
func (e errNoDomid) Error() string { return fmt.Sprintf("no domain %d", e.id) }

func domid(q string) (int, bool) {
	if q == "" {
		return 0, false
	}
	for _, c := range q {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	id, err := strconv.Atoi(q)
	return id, err == nil
}

// opts is a small getopt: short flags (letters; a letter followed by ':'
// takes an argument), long flags mapped to their short letter, options
// and operands in any order, "--" ending options. Unknown options fail as
// xl fails them.
func (s *sim) opts(args []string, short string, long map[string]byte) (map[byte]string, []string, error) {
	got := map[byte]string{}
	var rest []string
	takesArg := func(c byte) (bool, bool) {
		i := strings.IndexByte(short, c)
		if i < 0 {
			return false, false
		}
		return true, i+1 < len(short) && short[i+1] == ':'
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return got, append(rest, args[i+1:]...), nil
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			c, ok := long[name]
			if !ok {
				return nil, nil, fail(2, "option `%s' not supported.\n", a)
			}
			if _, arg := takesArg(c); arg && !hasVal {
				if i+1 >= len(args) {
					return nil, nil, fail(2, "option `%c' not supported.\n", c)
				}
				i++
				val = args[i]
			}
			got[c] = val
		case len(a) > 1 && a[0] == '-':
			for j := 1; j < len(a); j++ {
				c := a[j]
				ok, arg := takesArg(c)
				if !ok {
					return nil, nil, fail(2, "option `%c' not supported.\n", c)
				}
				if arg {
					val := a[j+1:]
					if val == "" {
						if i+1 >= len(args) {
							return nil, nil, fail(2, "option `%c' not supported.\n", c)
						}
						i++
						val = args[i]
					}
					got[c] = val
					break
				}
				got[c] += "1"
			}
		default:
			rest = append(rest, a)
		}
	}
	return got, rest, nil
}

func (s *sim) needArgs(verb string, rest []string, n int) error {
	if len(rest) >= n {
		return nil
	}
	plural := ""
	if n > 1 {
		plural = "s"
	}
	if s.flavour == flavourXM {
		return fail(1, "Error: 'xm %s' requires %d argument%s.\n\n", verb, n, plural)
	}
	return fail(2, "'xl %s' requires at least %d argument%s.\n\n", verb, n, plural)
}

// parseDuration reads a shutdown delay: a Go duration, or plain seconds.
func parseDuration(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		return d, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, fmt.Errorf("bad duration %q", v)
	}
	return time.Duration(f * float64(time.Second)), nil
}
