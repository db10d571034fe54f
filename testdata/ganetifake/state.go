// Package ganetifake is a Ganeti master for tests: an HTTPS RAPI server
// and gnt-instance / gnt-debug commands sharing one cluster state (kept in
// memory or in a JSON file under a lock), answering with the shapes,
// status codes and texts of a real Ganeti 3.0.2 (see
// testdata/ganeti-3.0.2/). Shutdown jobs do what Ganeti's do: mark the
// instance down, then stop its domain through a configured toolstack
// (`timeout N xl shutdown -w NAME`, then `xl destroy NAME` if it is still
// there).
package ganetifake

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
)

// State is the whole fake cluster, as stored in the state file.
type State struct {
	Cluster   ClusterInfo `json:"cluster"`
	Instances []Instance  `json:"instances"`
	Jobs      []Job       `json:"jobs,omitempty"`
	NextJobID int64       `json:"next_job_id,omitempty"`
	// Canceled counts the jobs cancelled before they started.
	Canceled int   `json:"canceled,omitempty"`
	Knobs    Knobs `json:"knobs"`
	// Toolstack is the xl (or xm) the shutdown and startup jobs call;
	// empty: the jobs only change the configuration.
	Toolstack Toolstack `json:"toolstack"`
}

// ClusterInfo is the cluster-wide configuration the fake needs.
type ClusterInfo struct {
	Name   string `json:"name"`
	Master string `json:"master"`
	// UserShutdown is gnt-cluster modify --user-shutdown: only then does
	// Ganeti report a powered-off domain as USER_down.
	UserShutdown bool `json:"user_shutdown"`
	// Version is the Ganeti version the fake answers as: one of
	// Versions ("2.10", "2.12", "2.16", "3.0"); "" is 3.0.
	Version string `json:"version,omitempty"`
}

// Instance is one instance of the fake cluster's configuration.
type Instance struct {
	Name             string   `json:"name"`
	PrimaryNode      string   `json:"pnode"`
	SecondaryNodes   []string `json:"snodes,omitempty"`
	AdminState       string   `json:"admin_state"`                  // up, down, offline
	AdminStateSource string   `json:"admin_state_source,omitempty"` // admin (default), user
	Tags             []string `json:"tags,omitempty"`
	UUID             string   `json:"uuid,omitempty"`
	Hypervisor       string   `json:"hypervisor,omitempty"`
	// Status overrides the live status when no toolstack is configured
	// (e.g. "USER_down"); empty: derived from AdminState.
	Status string `json:"status,omitempty"`
}

// Reason is one entry of a job's reason trail.
type Reason struct {
	Source string `json:"source"`
	Text   string `json:"text"`
	TS     int64  `json:"ts"`
}

// Job is a job of the fake queue.
type Job struct {
	ID int64 `json:"id"`
	// OpID is OP_INSTANCE_SHUTDOWN or OP_INSTANCE_STARTUP for the jobs
	// the fake runs; tests add
	// other jobs (e.g. OP_INSTANCE_STARTUP, status running) to hold an
	// instance's lock.
	OpID             string          `json:"op_id"`
	Instance         string          `json:"instance"`
	Timeout          int             `json:"timeout"`
	AdminStateSource string          `json:"admin_state_source,omitempty"`
	DryRun           bool            `json:"dry_run,omitempty"`
	Reason           []Reason        `json:"reason,omitempty"`
	Status           string          `json:"status"`
	Result           json.RawMessage `json:"result,omitempty"` // opresult[0]
	Log              []string        `json:"log,omitempty"`
	Received         float64         `json:"received,omitempty"`
	Started          float64         `json:"started,omitempty"`
	Ended            float64         `json:"ended,omitempty"`
}

// Knobs make the fake misbehave the way a real cluster can.
type Knobs struct {
	// DelayMS delays every RAPI answer.
	DelayMS int `json:"delay_ms,omitempty"`
	// Fail5xx answers the next Fail5xx RAPI requests with Fail5xxCode
	// (default 502).
	Fail5xx     int `json:"fail_5xx,omitempty"`
	Fail5xxCode int `json:"fail_5xx_code,omitempty"`
	// FailJobs makes the shutdown job of these instances end in error
	// with this OpExecError message.
	FailJobs map[string]string `json:"fail_jobs,omitempty"`
	// HangJobs leaves the shutdown job of these instances running for
	// ever, holding the instance lock (as Ganeti 3.x does with timeout 0
	// and a guest that ignores the request).
	HangJobs map[string]bool `json:"hang_jobs,omitempty"`
	// QueueJobs leaves the shutdown jobs of these instances queued (as
	// Ganeti's master does when it holds a job back), until cancelled or
	// the knob is cleared and Schedule runs.
	QueueJobs map[string]bool `json:"queue_jobs,omitempty"`
	// RefuseCancel answers every job cancel with Ganeti's refusal
	// ([false, "Job N is no longer waiting in the queue"]), as for a job
	// that left the queue in the meantime, and cancels nothing.
	RefuseCancel bool `json:"refuse_cancel,omitempty"`
	// ServerHeader replaces the Server header of every RAPI answer
	// ("Ganeti <release>"), as a proxy in front of RAPI may; "-" sends
	// none.
	ServerHeader string `json:"server_header,omitempty"`
	// OtherClients make lock holders that are no job: lock name -> the
	// client's name as the cluster's version prints it (2.12 and later
	// JSON-quote it, e.g. `"MainThread"`; 2.10 names masterd's thread).
	// Each holds its lock shared.
	OtherClients map[string]string `json:"other_clients,omitempty"`
	// NotFound404 answers a shutdown of an unknown instance with HTTP
	// 404, as a RAPI that checks the name first would; by default the job
	// is accepted and fails with Ganeti's "not known" error.
	NotFound404 bool `json:"not_found_404,omitempty"`
}

// Toolstack is the command the shutdown and startup jobs run.
type Toolstack struct {
	Command string   `json:"command,omitempty"`
	Env     []string `json:"env,omitempty"`
	// ConfigDir is where the instances' Xen configs live (default
	// /etc/xen): a startup job runs `xl create CONFIG_DIR/NAME`.
	ConfigDir string `json:"config_dir,omitempty"`
	// StopHook, when set, is the program a shutdown job runs as the
	// instance-stop hook of the instance's primary node: in the pre
	// phase before it does anything, in the post phase after the
	// shutdown succeeded, with the toolstack's Env, HookEnv and the
	// GANETI_* variables Ganeti 3.0.2 passes (a subset). A pre hook's
	// non-zero exit aborts the job with HooksAbort and the hook's output,
	// as Ganeti does; a post hook's is ignored.
	StopHook string   `json:"stop_hook,omitempty"`
	HookEnv  []string `json:"hook_env,omitempty"`
}

func (ts Toolstack) configDir() string {
	if ts.ConfigDir == "" {
		return "/etc/xen"
	}
	return ts.ConfigDir
}

// instance returns a pointer to the named instance, or nil.
func (s *State) instance(name string) *Instance {
	for i := range s.Instances {
		if s.Instances[i].Name == name {
			return &s.Instances[i]
		}
	}
	return nil
}

// job returns a pointer to the job with id, or nil.
func (s *State) job(id int64) *Job {
	for i := range s.Jobs {
		if s.Jobs[i].ID == id {
			return &s.Jobs[i]
		}
	}
	return nil
}

// Store holds a State in memory or in a file, serialising updates.
type Store struct {
	mu   sync.Mutex
	mem  *State
	path string
}

// NewMemoryStore keeps st in memory.
func NewMemoryStore(st State) *Store {
	c := clone(st)
	return &Store{mem: &c}
}

// NewFileStore keeps the state in path (JSON), locked with flock on
// path.lock so several processes (the RAPI fake, gnt-instance, gnt-debug)
// share it.
func NewFileStore(path string) *Store { return &Store{path: path} }

// WriteStateFile writes st to path for NewFileStore.
func WriteStateFile(path string, st State) error {
	return NewFileStore(path).Update(func(s *State) error { *s = clone(st); return nil })
}

// clone returns a deep copy of st. It copies field by field rather than
// through JSON: the in-memory store clones on every request and update,
// and a long randomized test accumulates thousands of jobs.
func clone(st State) State {
	c := st
	c.Instances = make([]Instance, len(st.Instances))
	for i, in := range st.Instances {
		in.SecondaryNodes = slices.Clone(in.SecondaryNodes)
		in.Tags = slices.Clone(in.Tags)
		c.Instances[i] = in
	}
	if st.Jobs != nil {
		c.Jobs = make([]Job, len(st.Jobs))
		for i, j := range st.Jobs {
			j.Reason = slices.Clone(j.Reason)
			j.Result = slices.Clone(j.Result)
			j.Log = slices.Clone(j.Log)
			c.Jobs[i] = j
		}
	}
	c.Knobs.FailJobs = maps.Clone(st.Knobs.FailJobs)
	c.Knobs.HangJobs = maps.Clone(st.Knobs.HangJobs)
	c.Knobs.QueueJobs = maps.Clone(st.Knobs.QueueJobs)
	c.Knobs.OtherClients = maps.Clone(st.Knobs.OtherClients)
	c.Toolstack.Env = slices.Clone(st.Toolstack.Env)
	return c
}

// View calls fn with a copy of the state.
func (s *Store) View(fn func(State) error) error {
	var st State
	if err := s.Update(func(cur *State) error { st = clone(*cur); return nil }); err != nil {
		return err
	}
	return fn(st)
}

// Snapshot returns a copy of the state.
func (s *Store) Snapshot() (State, error) {
	var out State
	err := s.View(func(st State) error { out = st; return nil })
	return out, err
}

// Update applies fn to the state under the lock and stores the result
// unless fn fails.
func (s *Store) Update(fn func(*State) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.path == "" {
		c := clone(*s.mem)
		if err := fn(&c); err != nil {
			return err
		}
		s.mem = &c
		return nil
	}
	lf, err := os.OpenFile(s.path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("state lock: %w", err)
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("state lock %s: %w", lf.Name(), err)
	}
	defer syscall.Flock(int(lf.Fd()), syscall.LOCK_UN)
	var st State
	b, err := os.ReadFile(s.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("state: %w", err)
	default:
		if err := json.Unmarshal(b, &st); err != nil {
			return fmt.Errorf("state %s: %w", s.path, err)
		}
	}
	if err := fn(&st); err != nil {
		return err
	}
	out, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.path), ".state-*")
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if _, err := tmp.Write(append(out, '\n')); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("state: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("state: %w", err)
	}
	return nil
}
