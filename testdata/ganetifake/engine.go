package ganetifake

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

// Engine is the fake master: queries, locks and the job queue over a
// Store. The RAPI handler and the gnt-* fakes both drive one.
type Engine struct {
	Store *Store
	// Async runs jobs in goroutines (the RAPI server); otherwise Submit
	// runs them before returning (the gnt-* commands).
	Async bool
	// Now is the clock (default time.Now).
	Now func() time.Time

	wg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc
}

// NewEngine returns an engine over s.
func NewEngine(s *Store, async bool) *Engine {
	ctx, cancel := context.WithCancel(context.Background())
	return &Engine{Store: s, Async: async, Now: time.Now, ctx: ctx, cancel: cancel}
}

// Close stops running jobs and waits for their goroutines.
func (e *Engine) Close() {
	e.cancel()
	e.wg.Wait()
}

func (e *Engine) now() float64 {
	t := e.Now()
	return float64(t.UnixNano()) / 1e9
}

// ---- query fields ----

// FieldDef describes a query field as Ganeti does.
type FieldDef struct {
	Name  string `json:"name"`
	Title string `json:"title"`
	Kind  string `json:"kind"`
	Doc   string `json:"doc"`
}

var instanceFieldDefs = map[string]FieldDef{
	"name":               {"name", "Instance", "text", "Instance name"},
	"pnode":              {"pnode", "Primary_node", "text", "Primary node"},
	"snodes":             {"snodes", "Secondary_Nodes", "other", "Secondary nodes; usually this will just be one node"},
	"admin_state":        {"admin_state", "InstanceState", "text", "Desired state of instance"},
	"admin_state_source": {"admin_state_source", "InstanceStateSource", "text", "Who last changed the desired state of the instance"},
	"tags":               {"tags", "Tags", "other", "Tags"},
	"uuid":               {"uuid", "UUID", "text", "Instance UUID"},
	"hypervisor":         {"hypervisor", "Hypervisor", "text", "Hypervisor name"},
	"oper_state":         {"oper_state", "Running", "bool", "Actual state of instance"},
	"status":             {"status", "Status", "text", `Instance status; "running" if instance is set to be running and actually is, "ADMIN_down" if instance is stopped and is not running, "ERROR_wrongnode" if instance running, but not on its designated primary node, "ERROR_up" if instance should be stopped, but is actually running, "ERROR_down" if instance should run, but doesn't, "ERROR_nodedown" if instance's primary node is down, "ERROR_nodeoffline" if instance's primary node is marked offline, "ADMIN_offline" if instance is offline and does not use dynamic resources`},
}

var lockFieldDefs = map[string]FieldDef{
	"name":    {"name", "Name", "other", "Lock name"},
	"mode":    {"mode", "Mode", "other", "Mode in which the lock is currently acquired (exclusive or shared)"},
	"owner":   {"owner", "Owner", "other", "Current lock owner(s)"},
	"pending": {"pending", "Pending", "other", "Jobs waiting for the lock"},
}

// QueryResult is Ganeti's query answer: field definitions and rows of
// [status, value] pairs.
type QueryResult struct {
	Fields []FieldDef `json:"fields"`
	Data   [][][2]any `json:"data"`
}

func fieldDefs(table map[string]FieldDef, fields []string) []FieldDef {
	out := make([]FieldDef, len(fields))
	for i, f := range fields {
		d, ok := table[f]
		if !ok {
			d = FieldDef{Name: f, Title: f, Kind: "unknown", Doc: "Unknown field '" + f + "'"}
		}
		out[i] = d
	}
	return out
}

// QueryInstances answers an instance query: fields in the order asked,
// rows filtered by qfilter (Ganeti's filter language; nil: every
// instance), sorted by name. Unknown fields answer [1, null].
func (e *Engine) QueryInstances(ctx context.Context, fields []string, qfilter any) (QueryResult, error) {
	st, err := e.Store.Snapshot()
	if err != nil {
		return QueryResult{}, err
	}
	prof, err := profileOf(st.Cluster.Version)
	if err != nil {
		return QueryResult{}, err
	}
	defs := instanceFieldDefs
	if !prof.adminStateSource {
		defs = maps.Clone(defs)
		delete(defs, "admin_state_source")
	}
	res := QueryResult{Fields: fieldDefs(defs, fields), Data: [][][2]any{}}
	insts := append([]Instance(nil), st.Instances...)
	sort.Slice(insts, func(i, j int) bool { return insts[i].Name < insts[j].Name })
	for _, in := range insts {
		in := in
		var live *liveState
		get := func(f string) (any, bool) {
			switch f {
			case "name":
				return in.Name, true
			case "pnode":
				return in.PrimaryNode, true
			case "snodes":
				return nonNil(in.SecondaryNodes), true
			case "admin_state":
				return in.AdminState, true
			case "admin_state_source":
				if !prof.adminStateSource {
					return nil, false
				}
				if in.AdminStateSource == "" {
					return "admin", true
				}
				return in.AdminStateSource, true
			case "tags":
				return nonNil(in.Tags), true
			case "uuid":
				return in.UUID, true
			case "hypervisor":
				if in.Hypervisor == "" {
					return "xen-pvm", true
				}
				return in.Hypervisor, true
			case "oper_state", "status":
				if live == nil {
					l := e.live(ctx, st, prof, in)
					live = &l
				}
				if f == "status" {
					return live.status, true
				}
				return live.oper, true
			}
			return nil, false
		}
		if qfilter != nil {
			ok, err := evalFilter(qfilter, get)
			if err != nil {
				return QueryResult{}, err
			}
			if !ok {
				continue
			}
		}
		row := make([][2]any, len(fields))
		for i, f := range fields {
			if v, ok := get(f); ok {
				row[i] = [2]any{0, v}
			} else {
				row[i] = [2]any{1, nil}
			}
		}
		res.Data = append(res.Data, row)
	}
	return res, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// FilterError is an invalid query filter.
type FilterError struct{ Msg string }

// Error returns the message Ganeti would give.
func (e *FilterError) Error() string { return e.Msg }

// evalFilter evaluates Ganeti's query filter language (the operators
// ganeti-userdown and its tests use): "|", "&", "!", "?", "=", "==",
// "!=", "=~", "=[]".
func evalFilter(f any, get func(string) (any, bool)) (bool, error) {
	l, ok := f.([]any)
	if !ok || len(l) == 0 {
		return false, &FilterError{fmt.Sprintf("Invalid filter: %v", f)}
	}
	op, ok := l[0].(string)
	if !ok {
		return false, &FilterError{fmt.Sprintf("Invalid filter operator: %v", l[0])}
	}
	field := func() (any, error) {
		if len(l) < 2 {
			return nil, &FilterError{"Missing field in filter " + op}
		}
		name, ok := l[1].(string)
		if !ok {
			return nil, &FilterError{fmt.Sprintf("Invalid field name in filter: %v", l[1])}
		}
		v, ok := get(name)
		if !ok {
			return nil, &FilterError{"Unknown field '" + name + "' in filter"}
		}
		return v, nil
	}
	switch op {
	case "|", "&":
		for _, sub := range l[1:] {
			r, err := evalFilter(sub, get)
			if err != nil {
				return false, err
			}
			if op == "|" && r {
				return true, nil
			}
			if op == "&" && !r {
				return false, nil
			}
		}
		return op == "&", nil
	case "!":
		if len(l) != 2 {
			return false, &FilterError{"Filter '!' takes one operand"}
		}
		r, err := evalFilter(l[1], get)
		return !r, err
	case "?":
		v, err := field()
		if err != nil {
			return false, err
		}
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			return x != "", nil
		case []string:
			return len(x) > 0, nil
		}
		return v != nil, nil
	case "=", "==", "!=", "=~", "=[]":
		if len(l) != 3 {
			return false, &FilterError{"Filter '" + op + "' takes a field and a value"}
		}
		v, err := field()
		if err != nil {
			return false, err
		}
		switch op {
		case "=~":
			pat, ok := l[2].(string)
			if !ok {
				return false, &FilterError{"Regular expression must be a string"}
			}
			re, err := regexp.Compile(pat)
			if err != nil {
				return false, &FilterError{"Invalid regular expression: " + err.Error()}
			}
			s, _ := v.(string)
			return re.MatchString(s), nil
		case "=[]":
			list, _ := v.([]string)
			for _, s := range list {
				if s == l[2] {
					return true, nil
				}
			}
			return false, nil
		}
		eq := fmt.Sprint(v) == fmt.Sprint(l[2])
		if op == "!=" {
			return !eq, nil
		}
		return eq, nil
	}
	return false, &FilterError{"Unknown operator '" + op + "'"}
}

// ---- live state through the toolstack ----

type liveState struct {
	oper   bool
	status string
}

// live computes oper_state and status as Ganeti 3.0.2 does from the
// toolstack's state letters (see xen-state-matrix.txt); 2.10 counts every
// listed domain as running.
func (e *Engine) live(ctx context.Context, st State, prof profile, in Instance) liveState {
	if st.Toolstack.Command == "" {
		if in.Status != "" {
			return liveState{oper: in.Status == "running" || in.Status == "USER_down" || in.Status == "ERROR_up", status: in.Status}
		}
		switch in.AdminState {
		case "up":
			return liveState{true, "running"}
		case "offline":
			return liveState{false, "ADMIN_offline"}
		}
		return liveState{false, "ADMIN_down"}
	}
	state, present, err := domainState(ctx, st.Toolstack, in.Name)
	if err != nil {
		return liveState{false, "ERROR_nodedown"}
	}
	switch {
	case !present && in.AdminState == "up":
		return liveState{false, "ERROR_down"}
	case !present && in.AdminState == "offline":
		return liveState{false, "ADMIN_offline"}
	case !present:
		return liveState{false, "ADMIN_down"}
	case prof.xenStateIgnored && in.AdminState == "up":
		return liveState{true, "running"}
	case prof.xenStateIgnored:
		return liveState{true, "ERROR_up"}
	case len(state) != 6:
		return liveState{false, "ERROR_nodedown"}
	case strings.Contains(state, "c"):
		return liveState{false, "ERROR_down"}
	case in.AdminState != "up":
		if state[3] == 's' {
			return liveState{true, "ADMIN_down"}
		}
		return liveState{true, "ERROR_up"}
	case state[3] == 's' && state[4] == '-':
		if st.Cluster.UserShutdown {
			return liveState{true, "USER_down"}
		}
		return liveState{true, "ERROR_down"}
	}
	return liveState{true, "running"}
}

// toolstack runs the configured toolstack command.
func toolstack(ctx context.Context, ts Toolstack, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, ts.Command, args...)
	cmd.Env = append(os.Environ(), ts.Env...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	return out.Bytes(), err
}

// domainState runs `xl list NAME` and returns the state letters of the
// domain; present is false when the toolstack does not know it.
func domainState(ctx context.Context, ts Toolstack, name string) (state string, present bool, err error) {
	out, err := toolstack(ctx, ts, "list", name)
	if err != nil {
		if _, ok := err.(*exec.ExitError); ok {
			return "", false, nil
		}
		return "", false, err
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 && f[0] == name {
			return f[len(f)-2], true, nil
		}
	}
	return "", false, nil
}

// stopDomain does what Ganeti 3.x's node daemon does for an instance
// shutdown: a domain already shut down is destroyed; a running one gets
// `timeout N xl shutdown -w NAME` (N = 0: no limit), then `xl destroy
// NAME` if it is still there.
func stopDomain(ctx context.Context, ts Toolstack, name string, timeout int) error {
	state, present, err := domainState(ctx, ts, name)
	if err != nil {
		return err
	}
	if !present {
		return nil
	}
	if len(state) < 4 || state[3] != 's' {
		sctx := ctx
		if timeout > 0 {
			var cancel context.CancelFunc
			sctx, cancel = context.WithTimeout(ctx, time.Duration(timeout)*time.Second)
			defer cancel()
		}
		toolstack(sctx, ts, "shutdown", "-w", name) // a timeout or failure falls through to destroy
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if _, present, err = domainState(ctx, ts, name); err != nil || !present {
			return err
		}
	}
	if out, err := toolstack(ctx, ts, "destroy", name); err != nil {
		return fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// ---- jobs ----

// Opcodes of the jobs the fake runs.
const (
	opShutdown = "OP_INSTANCE_SHUTDOWN"
	opStartup  = "OP_INSTANCE_STARTUP"
)

// Submit queues Ganeti's instance shutdown and schedules it: the job
// waits while another job holds the instance lock.
func (e *Engine) Submit(name string, timeout int, source string, reason []Reason, dryRun bool) (int64, error) {
	if source == "" {
		source = "admin"
	}
	return e.queue(Job{OpID: opShutdown, Instance: name, Timeout: timeout, AdminStateSource: source, DryRun: dryRun}, "instance_shutdown", reason)
}

// SubmitStartup queues Ganeti's instance startup and schedules it like a
// shutdown: the job waits while another job holds the instance lock.
func (e *Engine) SubmitStartup(name string, reason []Reason, dryRun bool) (int64, error) {
	return e.queue(Job{OpID: opStartup, Instance: name, DryRun: dryRun}, "instance_startup", reason)
}

// queue gives j an id, queues it with the reason trail Ganeti appends for
// opcode (gnt:opcode:<opcode>) and schedules the jobs.
func (e *Engine) queue(j Job, opcode string, reason []Reason) (int64, error) {
	err := e.Store.Update(func(st *State) error {
		j.ID = st.newJobID()
		j.Status, j.Received = "queued", e.now()
		j.Reason = append(reason, Reason{"gnt:opcode:" + opcode, fmt.Sprintf("job=%d;index=0", j.ID), e.Now().UnixNano()})
		st.Jobs = append(st.Jobs, j)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return j.ID, e.Schedule()
}

// holder returns the running job holding instance's lock, or 0.
func holder(st *State, instance string, except int64) int64 {
	for _, j := range st.Jobs {
		if j.ID != except && j.Instance == instance && j.Status == "running" {
			return j.ID
		}
	}
	return 0
}

// Schedule starts queued and waiting shutdown and startup jobs whose
// instance lock is free.
func (e *Engine) Schedule() error {
	var start []int64
	err := e.Store.Update(func(st *State) error {
		sort.Slice(st.Jobs, func(i, j int) bool { return st.Jobs[i].ID < st.Jobs[j].ID })
		for i := range st.Jobs {
			j := &st.Jobs[i]
			if (j.OpID != opShutdown && j.OpID != opStartup) || (j.Status != "queued" && j.Status != "waiting") {
				continue
			}
			if st.Knobs.QueueJobs[j.Instance] {
				continue
			}
			if holder(st, j.Instance, j.ID) != 0 {
				j.Status = "waiting"
				continue
			}
			j.Status = "running"
			j.Started = e.now()
			start = append(start, j.ID)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, id := range start {
		if e.Async {
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				e.execute(id)
			}()
		} else {
			e.execute(id)
		}
	}
	return nil
}

func opResult(class string, args ...any) json.RawMessage {
	b, _ := json.Marshal([]any{class, args})
	return b
}

// Finish ends job id with status ("success", "error", "canceled"),
// releasing its lock, and schedules the jobs waiting for it.
func (e *Engine) Finish(id int64, status string, result json.RawMessage) error {
	err := e.Store.Update(func(st *State) error {
		j := st.job(id)
		if j == nil {
			return fmt.Errorf("no job %d", id)
		}
		j.Status = status
		j.Result = result
		j.Ended = e.now()
		return nil
	})
	if err != nil {
		return err
	}
	return e.Schedule()
}

// Cancel cancels job id as Ganeti's job queue does (DELETE /2/jobs/<id>,
// gnt-job cancel): a queued job is dequeued and a job waiting for its
// locks is cancelled, both ending "canceled"; a running job is not
// cancelled. The answer is Ganeti's [success, message] pair; for a job
// that has ended Ganeti 3.0 reports success with "has been already dead"
// although nothing was cancelled, so callers must read the job's status.
func (e *Engine) Cancel(id int64) (bool, string, error) {
	var ok bool
	var msg string
	err := e.Store.Update(func(st *State) error {
		j := st.job(id)
		if j == nil {
			return fmt.Errorf("Job %d not found", id)
		}
		if mustProfile(*st).pythonQueue {
			// masterd's job queue (lib/jqueue.py _QueuedJob.Cancel): a
			// waiting job is only marked canceling; its worker ends it.
			switch j.Status {
			case "queued":
				ok, msg = true, fmt.Sprintf("Job %d canceled", id)
				j.Result = json.RawMessage(`"Job canceled by request"`)
			case "waiting":
				ok, msg = true, fmt.Sprintf("Job %d will be canceled", id)
				j.Status = "canceling"
				return nil
			default:
				ok, msg = false, fmt.Sprintf("Job %d is no longer waiting in the queue", id)
				return nil
			}
			j.Status = "canceled"
			j.Ended = e.now()
			st.Canceled++
			return nil
		}
		switch j.Status {
		case "queued":
			// Dequeued by the master: the opcode result stays null.
			ok, msg = true, fmt.Sprintf("Dequeued job %d", id)
		case "waiting":
			// The job process itself marks its opcodes cancelled.
			ok, msg = true, "Job successfully cancelled"
			j.Result = json.RawMessage(`"Job canceled by request"`)
		case "running", "canceling":
			ok, msg = false, "Job no longer waiting, can't cancel (informed it anyway)"
			return nil
		default:
			ok, msg = true, fmt.Sprintf("Job %d has been already dead", id)
			return nil
		}
		j.Status = "canceled"
		j.Ended = e.now()
		st.Canceled++
		return nil
	})
	if err != nil {
		return false, "", err
	}
	return ok, msg, nil
}

// FinishCanceling ends a job marked canceling (Ganeti 2.10's queue, see
// Cancel) as its worker does when it notices: canceled, with the opcode
// result "Job canceled by request".
func (e *Engine) FinishCanceling(id int64) error {
	err := e.Store.Update(func(st *State) error {
		if j := st.job(id); j != nil && j.Status == "canceling" {
			j.Status = "canceled"
			j.Result = json.RawMessage(`"Job canceled by request"`)
			j.Ended = e.now()
			st.Canceled++
		}
		return nil
	})
	if err != nil {
		return err
	}
	return e.Schedule()
}

// mustProfile returns the profile of the state's version, 3.0's for an
// unknown one (the handlers refuse those before a job exists).
func mustProfile(st State) profile {
	p, err := profileOf(st.Cluster.Version)
	if err != nil {
		return profiles["3.0"]
	}
	return p
}

// HoldLock adds a running job (opID, e.g. OP_INSTANCE_STARTUP) that holds
// instance's lock until Finish is called for it.
func (e *Engine) HoldLock(instance, opID string) (int64, error) {
	var id int64
	err := e.Store.Update(func(st *State) error {
		id = e.addRunningJob(st, instance, opID)
		return nil
	})
	return id, err
}

// TryHoldLock is HoldLock done only when no running job holds
// instance's lock; ok is false (and nothing added) otherwise. Tests use it
// to play a Ganeti job (a reboot) that takes the instance lock as the
// queue would, then Finish it.
func (e *Engine) TryHoldLock(instance, opID string) (id int64, ok bool, err error) {
	err = e.Store.Update(func(st *State) error {
		if holder(st, instance, 0) != 0 {
			return nil
		}
		id, ok = e.addRunningJob(st, instance, opID), true
		return nil
	})
	return id, ok, err
}

// addRunningJob appends a running job (opID) that holds instance's lock
// and returns its id.
func (e *Engine) addRunningJob(st *State, instance, opID string) int64 {
	id := st.newJobID()
	st.Jobs = append(st.Jobs, Job{ID: id, OpID: opID, Instance: instance, Status: "running", Received: e.now(), Started: e.now()})
	return id
}

// newJobID allocates the next job id: above every job the state holds,
// as Ganeti's job queue serial never goes back.
func (st *State) newJobID() int64 {
	if st.NextJobID == 0 {
		st.NextJobID = 1
	}
	for _, j := range st.Jobs {
		if j.ID >= st.NextJobID {
			st.NextJobID = j.ID + 1
		}
	}
	id := st.NextJobID
	st.NextJobID++
	return id
}

// execute runs a started shutdown or startup job to its end (or leaves it
// running when the instance's HangJobs knob is set).
func (e *Engine) execute(id int64) {
	st, err := e.Store.Snapshot()
	if err != nil {
		return
	}
	j := st.job(id)
	if j == nil {
		return
	}
	name := j.Instance
	in := st.instance(name)
	switch {
	case in == nil:
		e.Finish(id, "error", opResult("OpPrereqError", fmt.Sprintf("Instance '%s' not known", name), "unknown_entity"))
		return
	case j.OpID == opShutdown && j.AdminStateSource == "user" && e.live(e.ctx, st, mustProfile(st), *in).status != "USER_down":
		e.Finish(id, "error", opResult("OpPrereqError", fmt.Sprintf("Instance '%s' was not shutdown by the user", name)))
		return
	case st.Knobs.FailJobs[name] != "":
		e.Finish(id, "error", opResult("OpExecError", st.Knobs.FailJobs[name]))
		return
	case st.Knobs.HangJobs[name]:
		return
	case j.DryRun:
		e.Store.Update(func(s *State) error {
			if jj := s.job(id); jj != nil {
				jj.Log = append(jj.Log, " - INFO: dry-run mode requested, not actually executing the operation")
			}
			return nil
		})
		e.Finish(id, "success", nil)
		return
	case j.OpID == opStartup:
		e.startup(id, st, name)
		return
	}
	if st.Toolstack.StopHook != "" {
		if out, failed := stopHook(e.ctx, st, *in, "pre", j.Timeout); failed {
			if e.ctx.Err() != nil {
				return
			}
			node := in.PrimaryNode
			e.Finish(id, "error", opResult("HooksAbort", [][]string{{node, "50-userdown", out}}))
			return
		}
	}
	// Ganeti records the new admin state first, then stops the domain.
	err = e.Store.Update(func(s *State) error {
		if i := s.instance(name); i != nil {
			i.AdminState = "down"
			i.AdminStateSource = j.AdminStateSource
			i.Status = ""
		}
		return nil
	})
	if err != nil {
		e.Finish(id, "error", opResult("OpExecError", err.Error()))
		return
	}
	if st.Toolstack.Command != "" {
		if err := stopDomain(e.ctx, st.Toolstack, name, j.Timeout); err != nil {
			if e.ctx.Err() != nil {
				return // the fake is shutting down: the job stays running
			}
			e.Finish(id, "error", opResult("OpExecError", fmt.Sprintf("Could not shutdown instance '%s': %v", name, err)))
			return
		}
	}
	if st.Toolstack.StopHook != "" {
		stopHook(e.ctx, st, *in, "post", j.Timeout)
	}
	e.Finish(id, "success", nil)
}

// stopHook runs the configured instance-stop hook for in in phase and
// returns its output (stdout, then stderr, as Ganeti shows it) and
// whether it failed.
func stopHook(ctx context.Context, st State, in Instance, phase string, timeout int) (string, bool) {
	hv := in.Hypervisor
	if hv == "" {
		hv = "xen-pvm"
	}
	cmd := exec.CommandContext(ctx, st.Toolstack.StopHook)
	cmd.Env = append(append(os.Environ(), st.Toolstack.Env...), st.Toolstack.HookEnv...)
	cmd.Env = append(cmd.Env,
		"GANETI_HOOKS_PATH=instance-stop", "GANETI_HOOKS_PHASE="+phase, "GANETI_HOOKS_VERSION=2",
		"GANETI_OP_CODE=OP_INSTANCE_SHUTDOWN", "GANETI_OBJECT_TYPE=INSTANCE",
		"GANETI_INSTANCE_NAME="+in.Name, "GANETI_OP_TARGET="+in.Name,
		"GANETI_INSTANCE_PRIMARY="+in.PrimaryNode, "GANETI_INSTANCE_SECONDARIES="+strings.Join(in.SecondaryNodes, " "),
		"GANETI_INSTANCE_HYPERVISOR="+hv, "GANETI_INSTANCE_STATUS="+in.AdminState,
		"GANETI_INSTANCE_TAGS="+strings.Join(in.Tags, " "), "GANETI_INSTANCE_DISK_TEMPLATE=diskless",
		fmt.Sprintf("GANETI_TIMEOUT=%d", timeout),
		"GANETI_CLUSTER="+st.Cluster.Name, "GANETI_MASTER="+st.Cluster.Master)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	return strings.TrimSpace(stdout.String() + stderr.String()), err != nil
}

// startup does what Ganeti's instance startup does: record the instance
// as admin up (source admin), then, unless its domain already runs, write
// the instance's Xen config when there is none and run `xl create
// CONFIG_DIR/NAME`. A domain that exists but is shut down or crashed makes
// create fail ("already exists"), and the job with it, as on a real node.
func (e *Engine) startup(id int64, st State, name string) {
	err := e.Store.Update(func(s *State) error {
		if i := s.instance(name); i != nil {
			i.AdminState = "up"
			i.AdminStateSource = "admin"
			i.Status = ""
		}
		return nil
	})
	if err != nil {
		e.Finish(id, "error", opResult("OpExecError", err.Error()))
		return
	}
	if st.Toolstack.Command == "" {
		e.Finish(id, "success", nil)
		return
	}
	if err := startDomain(e.ctx, st.Toolstack, name); err != nil {
		if e.ctx.Err() != nil {
			return // the fake is shutting down: the job stays running
		}
		e.Finish(id, "error", opResult("OpExecError", fmt.Sprintf("Could not start instance '%s': %v", name, err)))
		return
	}
	e.Finish(id, "success", nil)
}

// startDomain creates the domain of name from ConfigDir/name unless a
// running domain of that name exists. A missing config is written as
// Ganeti's hypervisor would (its default actions: destroy, restart,
// restart).
func startDomain(ctx context.Context, ts Toolstack, name string) error {
	state, present, err := domainState(ctx, ts, name)
	if err != nil {
		return err
	}
	if present && len(state) == 6 && state[3] != 's' && !strings.Contains(state, "c") {
		return nil // already running: Ganeti's node daemon does not start it again
	}
	cfg := filepath.Join(ts.configDir(), name)
	if _, err := os.Stat(cfg); errors.Is(err, fs.ErrNotExist) {
		src := fmt.Sprintf("name = '%s'\nmemory = 128\nvcpus = 1\non_poweroff = 'destroy'\non_reboot = 'restart'\non_crash = 'restart'\n", name)
		if err := os.WriteFile(cfg, []byte(src), 0o644); err != nil {
			return err
		}
	}
	if out, err := toolstack(ctx, ts, "create", cfg); err != nil {
		return fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// ---- locks ----

// LockFilterError is the answer of Ganeti 2.9 to 2.11 to a filtered lock
// query (lib/server/masterd.py ClientOps.handle_request): an
// OpPrereqError that RAPI turns into HTTP 500 with str() of the exception.
type LockFilterError struct{}

// Error returns str() of Ganeti's two-argument OpPrereqError.
func (LockFilterError) Error() string { return `("Lock queries can't be filtered", 'wrong_input')` }

// QueryLocks answers the lock query as the cluster's version does (see
// profile.masterdLocks): from 2.12, only taken locks (the cluster lock,
// the lock sets and the instance locks of running or waiting jobs, plus
// Knobs.OtherClients), owners as job ids, filtered by qfilter; nothing
// when the queue is idle (as captured). On 2.10 every lock, free ones
// too, owners as thread names, and a qfilter is refused.
func (e *Engine) QueryLocks(fields []string, qfilter any) (QueryResult, error) {
	st, err := e.Store.Snapshot()
	if err != nil {
		return QueryResult{}, err
	}
	prof, err := profileOf(st.Cluster.Version)
	if err != nil {
		return QueryResult{}, err
	}
	if qfilter != nil && prof.masterdLocks {
		return QueryResult{}, LockFilterError{}
	}
	type lock struct {
		mode    any
		owner   []string
		pending []any
		rpc     bool // an rpc/ row: pending is null
	}
	locks := map[string]*lock{}
	get := func(name string) *lock {
		l := locks[name]
		if l == nil {
			l = &lock{owner: []string{}, pending: []any{}}
			locks[name] = l
		}
		return l
	}
	owner := func(j Job) string {
		if prof.masterdLocks {
			return threadName(j)
		}
		return fmt.Sprint(j.ID)
	}
	active := false
	for _, j := range st.Jobs {
		if j.Status != "running" && j.Status != "waiting" {
			continue
		}
		active = true
		bgl := get("cluster/BGL")
		bgl.mode = "shared"
		bgl.owner = append(bgl.owner, owner(j))
		if j.Instance == "" {
			continue
		}
		l := get("instance/" + j.Instance)
		if j.Status == "running" {
			l.mode = "exclusive"
			l.owner = append(l.owner, owner(j))
			if in := st.instance(j.Instance); prof.masterdLocks && in != nil && (j.OpID == opShutdown || j.OpID == opStartup) {
				proc := map[string]string{opShutdown: "instance_shutdown", opStartup: "instance_start"}[j.OpID]
				r := get("rpc/" + in.PrimaryNode + "/" + proc)
				r.rpc = true
				r.owner = append(r.owner, owner(j))
			}
		} else {
			l.pending = append(l.pending, []any{"exclusive", []string{owner(j)}})
		}
	}
	for name, client := range st.Knobs.OtherClients {
		active = true
		l := get(name)
		l.mode = "shared"
		l.owner = append(l.owner, client)
	}
	if active || prof.masterdLocks {
		for _, n := range []string{"cluster/[lockset]", "instance/[lockset]"} {
			get(n)
		}
	}
	if prof.masterdLocks {
		// Every registered lock is listed, free or not.
		for _, n := range []string{"cluster/BGL", "network/[lockset]", "node-alloc/NAL", "node-alloc/[lockset]", "node-res/[lockset]", "node/[lockset]", "nodegroup/[lockset]"} {
			get(n)
		}
		for _, in := range st.Instances {
			get("instance/" + in.Name)
		}
	}
	names := make([]string, 0, len(locks))
	for n := range locks {
		if qfilter != nil {
			ok, err := evalFilter(qfilter, func(f string) (any, bool) {
				if f == "name" {
					return n, true
				}
				return nil, false
			})
			if err != nil {
				return QueryResult{}, err
			}
			if !ok {
				continue
			}
		}
		names = append(names, n)
	}
	sort.Strings(names)
	res := QueryResult{Fields: fieldDefs(lockFieldDefs, fields), Data: [][][2]any{}}
	if prof.masterdLocks {
		for i := range res.Fields {
			switch res.Fields[i].Name {
			case "name":
				res.Fields[i].Kind = "text"
			case "pending":
				res.Fields[i].Doc = "Threads waiting for the lock"
			}
		}
	}
	for _, n := range names {
		l := locks[n]
		var ownerVal, pendingVal any = l.owner, l.pending
		if prof.masterdLocks && len(l.owner) == 0 {
			ownerVal = nil
		}
		if l.rpc {
			pendingVal = nil
		}
		row := make([][2]any, len(fields))
		for i, f := range fields {
			switch f {
			case "name":
				row[i] = [2]any{0, n}
			case "mode":
				row[i] = [2]any{0, l.mode}
			case "owner":
				row[i] = [2]any{0, ownerVal}
			case "pending":
				row[i] = [2]any{0, pendingVal}
			default:
				row[i] = [2]any{1, nil}
			}
		}
		res.Data = append(res.Data, row)
	}
	return res, nil
}

// JobJSON renders a job as GET /2/jobs/<id> does.
func JobJSON(j Job, in *Instance, prof profile) map[string]any {
	ts := func(f float64) any {
		if f == 0 {
			return nil
		}
		sec := int64(f)
		return []int64{sec, int64((f - float64(sec)) * 1e6)}
	}
	reason := make([][]any, len(j.Reason))
	for i, r := range j.Reason {
		reason[i] = []any{r.Source, r.Text, r.TS}
	}
	op := map[string]any{
		"dry_run": j.DryRun, "debug_level": 0, "priority": 0, "depends": nil, "comment": nil,
		"reason": reason, "OP_ID": j.OpID, "instance_name": j.Instance,
	}
	if in != nil {
		op["instance_uuid"] = in.UUID
	}
	summary := strings.TrimPrefix(j.OpID, "OP_")
	if j.OpID == opShutdown {
		op["force"] = false
		op["ignore_offline_nodes"] = false
		op["timeout"] = j.Timeout
		op["no_remember"] = false
		if prof.adminStateSource {
			op["admin_state_source"] = j.AdminStateSource
		}
	}
	if j.OpID == opStartup {
		op["force"] = false
		op["ignore_offline_nodes"] = false
		op["hvparams"] = map[string]any{}
		op["beparams"] = map[string]any{}
		op["no_remember"] = false
		op["startup_paused"] = false
	}
	var result any
	if len(j.Result) > 0 {
		result = j.Result
	}
	oplog := []any{}
	for i, l := range j.Log {
		oplog = append(oplog, []any{i + 1, ts(j.Started), "message", l})
	}
	return map[string]any{
		"id": j.ID, "ops": []any{op}, "status": j.Status,
		"summary":     []string{summary + "(" + j.Instance + ")"},
		"opstatus":    []string{j.Status},
		"received_ts": ts(j.Received), "start_ts": ts(j.Started), "end_ts": ts(j.Ended),
		"oplog": []any{oplog}, "opresult": []any{result},
	}
}
