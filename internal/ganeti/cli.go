package ganeti

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"ganeti-userdown/internal/dnsname"
)

// CLIOptions configure the CLI backend.
type CLIOptions struct {
	// GntInstance and GntDebug are Ganeti's commands.
	GntInstance, GntDebug string
	// ShutdownTimeout is given to gnt-instance shutdown --timeout:
	// positive whole seconds (default 10s).
	ShutdownTimeout time.Duration
	// Timeout bounds each command, the job wait of gnt-instance shutdown
	// and startup included (default 30s).
	Timeout time.Duration
	// RunTimeout bounds all of the client's commands in one run together
	// (default DefaultRunTimeout). The client's first call starts it.
	RunTimeout time.Duration
}

// CLI is the Client that runs Ganeti's gnt-instance and gnt-debug. It
// works only on the master node.
type CLI struct {
	o   CLIOptions
	run *budget
}

var _ Client = (*CLI)(nil)

// NewCLI checks the options.
func NewCLI(o CLIOptions) (*CLI, error) {
	if o.GntInstance == "" || o.GntDebug == "" {
		return nil, errors.New("cli backend: gnt_instance and gnt_debug must be set")
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Timeout < 0 {
		return nil, fmt.Errorf("cli backend: timeout must be positive, got %s", o.Timeout)
	}
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = 10 * time.Second
	}
	if _, err := shutdownSeconds(o.ShutdownTimeout); err != nil {
		return nil, fmt.Errorf("cli backend: %w", err)
	}
	run, err := newBudget(o.RunTimeout)
	if err != nil {
		return nil, fmt.Errorf("cli backend: %w", err)
	}
	return &CLI{o: o, run: run}, nil
}

// cliSep separates output fields. Ganeti does not escape separators in
// its output; '|' cannot occur in instance or node names, in lock names,
// or in tags (Ganeti allows only [\w.+*/:@-] in tags).
const cliSep = "|"

// CommandError is a gnt-* command that failed.
type CommandError struct {
	Args     []string
	ExitCode int
	Output   string
}

// Error names the command, its exit status and its output.
func (e *CommandError) Error() string {
	return fmt.Sprintf("%s: exit %d: %s", strings.Join(e.Args, " "), e.ExitCode, strings.TrimSpace(e.Output))
}

// exec runs one command bounded by Timeout (and the run's budget). stdout and stderr are kept
// apart unless combined is set.
func (c *CLI) exec(ctx context.Context, combined bool, args ...string) (stdout, stderr []byte, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	var out, errb bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errb
	if combined {
		cmd.Stderr = &out
	}
	cmd.WaitDelay = time.Second
	err = cmd.Run()
	if err == nil {
		return out.Bytes(), errb.Bytes(), nil
	}
	if ctx.Err() != nil {
		return out.Bytes(), errb.Bytes(), fmt.Errorf("%s: no answer within %s: %w", strings.Join(args, " "), c.o.Timeout, ctxErr(ctx))
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		text := errb.String() + out.String()
		ce := &CommandError{Args: args, ExitCode: ee.ExitCode(), Output: text}
		if strings.Contains(text, "This is not the master node") {
			return out.Bytes(), errb.Bytes(), fmt.Errorf("%w: %w", ErrNotMaster, ce)
		}
		return out.Bytes(), errb.Bytes(), ce
	}
	return out.Bytes(), errb.Bytes(), fmt.Errorf("%s: %w", strings.Join(args, " "), err)
}

// exitUnknownField is Ganeti's exit code when a list asks for a field it
// does not know; the rows are printed all the same.
const exitUnknownField = 14

// InstanceListArgs is the gnt-instance list command line for node.
func InstanceListArgs(gntInstance, node string) []string {
	return []string{gntInstance, "list", "--no-headers", "--separator=" + cliSep,
		"-o", strings.Join(instanceFields, ","), "-F", `pnode == "` + node + `"`}
}

// Instances runs gnt-instance list filtered to node by the master.
func (c *CLI) Instances(ctx context.Context, node string) ([]Instance, error) {
	if node == "" || strings.ContainsAny(node, "\"\\\n") {
		return nil, fmt.Errorf("cli backend: bad node name %q", node)
	}
	ctx, cancel := c.run.context(ctx)
	defer cancel()
	args := InstanceListArgs(c.o.GntInstance, node)
	out, _, err := c.exec(ctx, false, args...)
	var ce *CommandError
	if err != nil && !(errors.As(err, &ce) && ce.ExitCode == exitUnknownField) {
		return nil, err
	}
	all, perr := ParseInstanceList(out)
	if perr != nil {
		return nil, fmt.Errorf("%s: %w", strings.Join(args, " "), perr)
	}
	return checkNames(onNode(all, node))
}

// Result status markers gnt-* print in place of a value.
const (
	markUnknown = "??"
	markNoData  = "?"
	markOffline = "*"
	markUnavail = "-"
)

// ParseInstanceList parses `gnt-instance list --no-headers --separator=|
// -o name,pnode,admin_state,admin_state_source,tags`: one instance a line,
// tags comma-separated. "??" for admin_state_source (a Ganeti without
// that field) leaves it empty; any other marker or an unexpected value is
// an error.
func ParseInstanceList(out []byte) ([]Instance, error) {
	var res []Instance
	for n, line := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Split(line, cliSep)
		if len(f) != len(instanceFields) {
			return nil, fmt.Errorf("line %d: %d fields, want %d: %q", n+1, len(f), len(instanceFields), line)
		}
		for i, v := range f[:3] {
			if v == "" || v == markUnknown || v == markNoData || v == markOffline || v == markUnavail {
				return nil, fmt.Errorf("line %d: field %s has no value (%q)", n+1, instanceFields[i], v)
			}
		}
		st, err := parseAdminState(f[2])
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n+1, err)
		}
		in := Instance{Name: f[0], PrimaryNode: f[1], AdminState: st, Tags: []string{}}
		switch f[3] {
		case markUnknown, markNoData, markOffline, markUnavail:
		case "admin", "user":
			in.AdminStateSource = f[3]
		default:
			return nil, fmt.Errorf("line %d: field admin_state_source: unknown value %q", n+1, f[3])
		}
		switch f[4] {
		case "":
		case markUnknown, markNoData, markOffline:
			return nil, fmt.Errorf("line %d: field tags has no value (%q)", n+1, f[4])
		default:
			in.Tags = strings.Split(f[4], ",")
		}
		res = append(res, in)
	}
	return res, nil
}

// LockListArgs is the gnt-debug locks command line.
func LockListArgs(gntDebug string) []string {
	return []string{gntDebug, "locks", "--no-headers", "--separator=" + cliSep, "-o", strings.Join(lockFields, ",")}
}

// Locked runs gnt-debug locks. No command runs when names is empty.
func (c *CLI) Locked(ctx context.Context, names []string) (map[string]bool, error) {
	if len(names) == 0 {
		return map[string]bool{}, nil
	}
	ctx, cancel := c.run.context(ctx)
	defer cancel()
	args := LockListArgs(c.o.GntDebug)
	out, _, err := c.exec(ctx, false, args...)
	if err != nil {
		return nil, err
	}
	locks, err := ParseLockList(out)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", strings.Join(args, " "), err)
	}
	return LockedInstances(locks, names), nil
}

// ParseLockList parses `gnt-debug locks --no-headers --separator=| -o
// name,mode,owner,pending`: "-" for none, owners comma-separated, pending
// as "mode:owner,owner" groups joined by ", " (lib/client/gnt_debug.py
// ListLocks, the same in 2.9 to 3.0). Owners are job ids, thread names or
// quoted client names depending on the version (see LockHolder); 2.9 to
// 2.11 list every lock, free ones as "name|-|-|-".
func ParseLockList(out []byte) ([]Lock, error) {
	var res []Lock
	for n, line := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Split(line, cliSep)
		if len(f) != len(lockFields) {
			return nil, fmt.Errorf("line %d: %d fields, want %d: %q", n+1, len(f), len(lockFields), line)
		}
		l := Lock{Name: f[0]}
		if l.Name == "" {
			return nil, fmt.Errorf("line %d: empty lock name", n+1)
		}
		if f[1] != "-" {
			l.Mode = f[1]
		}
		if f[2] != "-" {
			for _, o := range strings.Split(f[2], ",") {
				h, err := ParseLockHolder(o)
				if err != nil {
					return nil, fmt.Errorf("line %d: owner %q: %w", n+1, f[2], err)
				}
				l.Owners = append(l.Owners, h)
			}
		}
		if f[3] != "-" {
			for _, grp := range strings.Split(f[3], ", ") {
				mode, names, ok := strings.Cut(grp, ":")
				if !ok || mode == "" {
					return nil, fmt.Errorf("line %d: pending %q is not mode:owners", n+1, grp)
				}
				for _, o := range strings.Split(names, ",") {
					h, err := ParseLockHolder(o)
					if err != nil {
						return nil, fmt.Errorf("line %d: pending %q: %w", n+1, grp, err)
					}
					l.Pending = append(l.Pending, h)
				}
			}
		}
		res = append(res, l)
	}
	return res, nil
}

// ShutdownArgs is the gnt-instance shutdown command line.
func ShutdownArgs(gntInstance string, timeoutSecs int, reason, name string) []string {
	return []string{gntInstance, "shutdown", "--timeout=" + strconv.Itoa(timeoutSecs), "--reason=" + reason, name}
}

var (
	waitingRe = regexp.MustCompile(`(?m)^Waiting for job (\d+) for (\S+) \.\.\.`)
	failedRe  = regexp.MustCompile(`(?s)Job (\d+) for \S+ has failed: (.*)`)
)

// MarkDown runs gnt-instance shutdown, which submits Ganeti's job and
// waits for it, bounded by Timeout. gnt-instance shutdown has no option
// for admin_state_source: req.UserSource is not honoured by this backend
// (the instance is marked down with source "admin").
//
// Right before submitting, it lists the locks (gnt-debug locks) and defers
// the mark-down (ErrJobDeferred, nothing submitted) when a job holds or
// waits for instance/<name>. Unlike the RAPI backend it cannot cancel its
// own job once submitted: gnt-instance shutdown waits for the job it
// submits, so a job that another one (a start, a reboot) overtakes in the
// short gap between the lock listing and the submission waits for it and
// then runs. The RAPI backend closes that gap; prefer it.
func (c *CLI) MarkDown(ctx context.Context, req MarkDownRequest) (Job, error) {
	secs, err := shutdownSeconds(c.o.ShutdownTimeout)
	if err != nil {
		return Job{}, err
	}
	return c.submit(ctx, "mark down", "shutdown", req.Name, func() []string {
		return ShutdownArgs(c.o.GntInstance, secs, reasonText(req.Reason, markDownReason), req.Name)
	})
}

// StartUpArgs is the gnt-instance startup command line.
func StartUpArgs(gntInstance, reason, name string) []string {
	return []string{gntInstance, "startup", "--reason=" + reason, name}
}

// StartUp runs gnt-instance startup, which submits Ganeti's job and waits
// for it, bounded by Timeout. As for MarkDown, the locks are listed right
// before and the start is deferred (ErrJobDeferred, nothing submitted)
// while a job holds or waits for instance/<name>: a start queued behind an
// administrator's shutdown would undo it.
func (c *CLI) StartUp(ctx context.Context, req StartUpRequest) (Job, error) {
	return c.submit(ctx, "start", "startup", req.Name, func() []string {
		return StartUpArgs(c.o.GntInstance, reasonText(req.Reason, startUpReason), req.Name)
	})
}

// submit checks the instance lock, then runs the gnt-instance command
// args builds (verb names it in messages) and reads its job.
func (c *CLI) submit(ctx context.Context, what, verb, name string, args func() []string) (Job, error) {
	if err := dnsname.Check(name); err != nil {
		return Job{}, fmt.Errorf("cli backend: %s: bad instance name: %w", what, err)
	}
	locked, err := c.Locked(ctx, []string{name})
	if err != nil {
		return Job{}, fmt.Errorf("%s %s: lock check before submitting: %w", what, name, err)
	}
	if locked[name] {
		return Job{}, fmt.Errorf("%s %s: a job holds or waits for instance/%s, nothing submitted: %w", what, name, name, ErrJobDeferred)
	}
	ctx, cancel := c.run.context(ctx)
	defer cancel()
	out, _, err := c.exec(ctx, true, args()...)
	return parseJobOutput(what, "gnt-instance "+verb, name, out, err)
}

// ParseShutdownOutput turns the output of gnt-instance shutdown (stdout
// and stderr together) and its error into MarkDown's result.
func ParseShutdownOutput(name string, out []byte, runErr error) (Job, error) {
	return parseJobOutput("mark down", "gnt-instance shutdown", name, out, runErr)
}

// ParseStartUpOutput turns the output of gnt-instance startup (stdout and
// stderr together) and its error into StartUp's result.
func ParseStartUpOutput(name string, out []byte, runErr error) (Job, error) {
	return parseJobOutput("start", "gnt-instance startup", name, out, runErr)
}

// parseJobOutput reads the output of a gnt-instance command that submits
// one job and waits for it ("Waiting for job N for NAME ...", then
// nothing or "Job N for NAME has failed: ..."). what names the action and
// command the command in errors.
func parseJobOutput(what, command, name string, out []byte, runErr error) (Job, error) {
	var job Job
	if m := waitingRe.FindSubmatch(out); m != nil {
		job.ID, _ = strconv.ParseInt(string(m[1]), 10, 64)
		job.Status = JobRunning
	}
	text := string(out)
	switch {
	case runErr == nil && job.ID != 0:
		job.Status = JobSuccess
		return job, nil
	case runErr == nil:
		return job, fmt.Errorf("%s %s: %s printed no job: %q", what, name, command, strings.TrimSpace(text))
	case errors.Is(runErr, ErrNotMaster):
		return job, fmt.Errorf("%s %s: %w", what, name, runErr)
	case errors.Is(runErr, context.DeadlineExceeded) && job.ID != 0:
		return job, fmt.Errorf("%s %s: job %d still running: %w: %v", what, name, job.ID, ErrJobUnfinished, runErr)
	case strings.Contains(text, "Selection filter does not match any instances") ||
		strings.Contains(text, "not known") && job.ID == 0:
		return job, fmt.Errorf("%s %s: %w: %v", what, name, ErrInstanceGone, runErr)
	}
	if m := failedRe.FindStringSubmatch(text); m != nil {
		job.Status = JobError
		job.Error = strings.TrimSpace(m[2])
		if strings.Contains(job.Error, "not known") {
			return job, fmt.Errorf("%s %s: job %d: %w: %s", what, name, job.ID, ErrInstanceGone, job.Error)
		}
		return job, fmt.Errorf("%s %s: job %d error: %w: %s", what, name, job.ID, ErrJobFailed, job.Error)
	}
	return job, fmt.Errorf("%s %s: %w", what, name, runErr)
}
