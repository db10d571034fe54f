package ganeti

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"ganeti-userdown/internal/testbin"
	"ganeti-userdown/testdata/ganetifake"
)

func TestMain(m *testing.M) { testbin.Main(m) }

// backend is one Client under the contract, with its fake cluster.
type backend struct {
	client Client
	engine *ganetifake.Engine
	// requests returns how many requests or commands reached the fake.
	requests func() int
}

func (b backend) update(t *testing.T, fn func(*ganetifake.State)) {
	t.Helper()
	if err := b.engine.Store.Update(func(s *ganetifake.State) error { fn(s); return nil }); err != nil {
		t.Fatal(err)
	}
}

func (b backend) state(t *testing.T) ganetifake.State {
	t.Helper()
	st, err := b.engine.Store.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

type backendMaker func(t *testing.T, st ganetifake.State, timeout time.Duration) backend

// atVersion makes mk's fake cluster answer as Ganeti version v.
func atVersion(mk backendMaker, v string) backendMaker {
	return func(t *testing.T, st ganetifake.State, timeout time.Duration) backend {
		st.Cluster.Version = v
		return mk(t, st, timeout)
	}
}

func rapiBackend(t *testing.T, st ganetifake.State, timeout time.Duration) backend {
	f := ganetifake.Start(t, st)
	c := newRAPI(t, f, func(o *RAPIOptions) { o.Timeout = timeout })
	return backend{client: c, engine: f.Engine, requests: func() int { return len(f.Requests()) }}
}

func cliBackend(t *testing.T, st ganetifake.State, timeout time.Duration) backend {
	gi := testbin.Build(t, "ganeti-userdown/testdata/ganetifake/cmd/gnt-instance")
	gd := testbin.Build(t, "ganeti-userdown/testdata/ganetifake/cmd/gnt-debug")
	dir := t.TempDir()
	statePath := filepath.Join(dir, "state.json")
	logPath := filepath.Join(dir, "commands.log")
	if err := ganetifake.WriteStateFile(statePath, st); err != nil {
		t.Fatal(err)
	}
	t.Setenv(ganetifake.EnvState, statePath)
	t.Setenv(ganetifake.EnvLog, logPath)
	c, err := NewCLI(CLIOptions{GntInstance: gi, GntDebug: gd, ShutdownTimeout: 3 * time.Second, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	count := func() int {
		b, _ := os.ReadFile(logPath)
		return strings.Count(string(b), "\n")
	}
	return backend{client: c, engine: ganetifake.NewEngine(ganetifake.NewFileStore(statePath), false), requests: count}
}

// TestContract runs the same behaviour against both backends and their
// fakes, as each Ganeti version answers.
func TestContract(t *testing.T) {
	for _, v := range ganetifake.Versions {
		for name, mk := range map[string]backendMaker{"rapi": rapiBackend, "cli": cliBackend} {
			t.Run(v+"/"+name, func(t *testing.T) { contract(t, atVersion(mk, v), v) })
		}
	}
}

func contract(t *testing.T, mk backendMaker, version string) {
	ctx := context.Background()
	// Ganeti before 2.11.2 has no admin_state_source.
	userSrc, adminSrc := "user", "admin"
	if version == "2.10" {
		userSrc, adminSrc = "", ""
	}
	t.Run("instances of the node", func(t *testing.T) {
		b := mk(t, fakeState(), 5*time.Second)
		got, err := b.client.Instances(ctx, "node1.example.com")
		if err != nil {
			t.Fatal(err)
		}
		want := []Instance{
			{Name: "db1.example.com", PrimaryNode: "node1.example.com", AdminState: AdminDown, AdminStateSource: userSrc, Tags: []string{}},
			{Name: "web1.example.com", PrimaryNode: "node1.example.com", AdminState: AdminUp, AdminStateSource: adminSrc, Tags: []string{"owner:alice"}},
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("instances (-want +got):\n%s", d)
		}
		got, err = b.client.Instances(ctx, "node9.example.com")
		if err != nil || len(got) != 0 {
			t.Errorf("node without instances: %+v %v", got, err)
		}
	})

	// Reference: design.md, "Decisions", safety rule 3: "Never mark down
	// an instance ... that a Ganeti job holds (instance locks)."
	t.Run("locks", func(t *testing.T) {
		b := mk(t, fakeState(), 5*time.Second)
		names := []string{"web1.example.com", "db1.example.com"}
		got, err := b.client.Locked(ctx, names)
		if err != nil || len(got) != 0 {
			t.Fatalf("idle cluster: %v %v", got, err)
		}
		id, err := b.engine.HoldLock("web1.example.com", "OP_INSTANCE_STARTUP")
		if err != nil {
			t.Fatal(err)
		}
		got, err = b.client.Locked(ctx, names)
		if d := cmp.Diff(map[string]bool{"web1.example.com": true}, got); d != "" || err != nil {
			t.Errorf("locked (-want +got):\n%s %v", d, err)
		}
		b.engine.Finish(id, "success", nil)
		n := b.requests()
		if got, err := b.client.Locked(ctx, nil); err != nil || len(got) != 0 {
			t.Errorf("no names: %v %v", got, err)
		}
		if b.requests() != n {
			t.Errorf("Locked(nil) asked the cluster")
		}
	})

	// Reference: design.md, "Decisions": "Marking down is Ganeti's own
	// instance shutdown ... with a short *positive* timeout ..., a reason
	// naming ganeti-userdown".
	t.Run("mark down", func(t *testing.T) {
		b := mk(t, fakeState(), 5*time.Second)
		j, err := b.client.MarkDown(ctx, MarkDownRequest{Name: "web1.example.com", Reason: "guest powered off"})
		if err != nil {
			t.Fatal(err)
		}
		if j.ID == 0 || j.Status != JobSuccess || j.Error != "" {
			t.Errorf("job %+v", j)
		}
		st := b.state(t)
		if in := st.Instances[0]; in.AdminState != "down" || in.AdminStateSource != "admin" {
			t.Errorf("instance after mark-down: %+v", in)
		}
		job := st.Jobs[len(st.Jobs)-1]
		if job.Timeout != 3 {
			t.Errorf("shutdown timeout %d, want 3", job.Timeout)
		}
		if job.Reason[0].Source != "gnt:user" || !strings.Contains(job.Reason[0].Text, "ganeti-userdown") || !strings.Contains(job.Reason[0].Text, "guest powered off") {
			t.Errorf("reason trail %+v", job.Reason)
		}
	})

	t.Run("unknown instance", func(t *testing.T) {
		b := mk(t, fakeState(), 5*time.Second)
		_, err := b.client.MarkDown(ctx, MarkDownRequest{Name: "gone.example.com"})
		if !errors.Is(err, ErrInstanceGone) {
			t.Errorf("want ErrInstanceGone, got %v", err)
		}
	})

	t.Run("failing job", func(t *testing.T) {
		b := mk(t, fakeState(), 5*time.Second)
		b.update(t, func(s *ganetifake.State) {
			s.Knobs.FailJobs = map[string]string{"web1.example.com": "Could not shutdown instance: hypervisor error"}
		})
		j, err := b.client.MarkDown(ctx, MarkDownRequest{Name: "web1.example.com"})
		if !errors.Is(err, ErrJobFailed) || j.Status != JobError || !strings.Contains(j.Error, "hypervisor error") || j.ID == 0 {
			t.Errorf("got %+v, %v", j, err)
		}
		if in := b.state(t).Instances[0]; in.AdminState != "up" {
			t.Errorf("failed job changed the instance: %+v", in)
		}
	})

	t.Run("job never finishes", func(t *testing.T) {
		b := mk(t, fakeState(), 700*time.Millisecond)
		b.update(t, func(s *ganetifake.State) { s.Knobs.HangJobs = map[string]bool{"web1.example.com": true} })
		start := time.Now()
		j, err := b.client.MarkDown(ctx, MarkDownRequest{Name: "web1.example.com"})
		if !errors.Is(err, ErrJobUnfinished) || j.ID == 0 || JobFinished(j.Status) {
			t.Errorf("got %+v, %v", j, err)
		}
		if el := time.Since(start); el > 5*time.Second {
			t.Errorf("waited %s with a 700ms bound", el)
		}
	})

	// Reference: design.md, "Decisions", safety rule 3: "Never mark down
	// an instance ... that a Ganeti job holds (instance locks)"; and
	// safety rule 1: "Never destroy a domain that is not shut down or
	// crashed": run after the job holding the instance (here a reboot),
	// Ganeti's shutdown would find the domain running again and stop it.
	t.Run("defers while a job holds the lock and never runs after it", func(t *testing.T) {
		b := mk(t, fakeState(), 5*time.Second)
		holder, err := b.engine.HoldLock("web1.example.com", "OP_INSTANCE_REBOOT")
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		j, err := b.client.MarkDown(ctx, MarkDownRequest{Name: "web1.example.com"})
		if !errors.Is(err, ErrJobDeferred) {
			t.Fatalf("got %+v, %v; want ErrJobDeferred", j, err)
		}
		if el := time.Since(start); el > 2*time.Second {
			t.Errorf("deferring took %s: the lock owner should be seen at once", el)
		}
		if err := b.engine.Finish(holder, "success", nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // a job left queued would run now
		st := b.state(t)
		for _, in := range st.Instances {
			if in.Name == "web1.example.com" && in.AdminState != "up" {
				t.Errorf("web1 is admin %s after the lock freed: the deferred shutdown ran", in.AdminState)
			}
		}
		for _, sj := range st.Jobs {
			if sj.ID != holder && sj.Status != "canceled" {
				t.Errorf("job %d (%s) is %s, want canceled or never submitted", sj.ID, sj.OpID, sj.Status)
			}
		}
	})
}

// simNode gives st a simulated xl (the e2e simulator) with its configs in
// a temporary directory, and returns a function running that xl.
func simNode(t *testing.T, st *ganetifake.State) (xl func(args ...string) (string, error), configDir string) {
	t.Helper()
	sim := testbin.BuildAs(t, "ganeti-userdown/testdata/xensim", "xl")
	dir := t.TempDir()
	configDir = filepath.Join(dir, "xen")
	if err := os.Mkdir(configDir, 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{"XENSIM_STATE=" + filepath.Join(dir, "xen-state.json")}
	st.Toolstack = ganetifake.Toolstack{Command: sim, Env: env, ConfigDir: configDir}
	return func(args ...string) (string, error) {
		cmd := exec.Command(sim, args...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}, configDir
}

// TestContractStartUp: both backends start an instance through Ganeti's
// own startup job, which records it admin up and creates its domain from
// the config on the node; they defer, as MarkDown does, while another job
// holds the instance.
//
// Reference: doc/design.md, "Safety rules": never undo an
// administrator's or a user's stop; a start queued behind a shutdown job
// would run after it.
func TestContractStartUp(t *testing.T) {
	for name, mk := range map[string]backendMaker{"rapi": rapiBackend, "cli": cliBackend} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			t.Run("starts the domain and records admin up", func(t *testing.T) {
				st := fakeState()
				xl, cfgDir := simNode(t, &st)
				cfg := "name = 'db1.example.com'\nmemory = 128\nvcpus = 1\non_poweroff = 'preserve'\non_crash = 'preserve'\n"
				if err := os.WriteFile(filepath.Join(cfgDir, "db1.example.com"), []byte(cfg), 0o644); err != nil {
					t.Fatal(err)
				}
				b := mk(t, st, 5*time.Second)
				j, err := b.client.StartUp(ctx, StartUpRequest{Name: "db1.example.com", Reason: "crashed domain destroyed"})
				if err != nil {
					t.Fatal(err)
				}
				if j.ID == 0 || j.Status != JobSuccess {
					t.Errorf("job %+v", j)
				}
				out, err := xl("list", "db1.example.com")
				if err != nil || !strings.Contains(out, "db1.example.com") {
					t.Errorf("xl list after the start: %v: %s", err, out)
				}
				got := b.state(t)
				if in := got.Instances[1]; in.AdminState != "up" || in.AdminStateSource != "admin" {
					t.Errorf("instance after start: %+v", in)
				}
				job := got.Jobs[len(got.Jobs)-1]
				if job.OpID != "OP_INSTANCE_STARTUP" || job.Reason[0].Source != "gnt:user" ||
					!strings.Contains(job.Reason[0].Text, "ganeti-userdown") || !strings.Contains(job.Reason[0].Text, "crashed domain destroyed") {
					t.Errorf("job %s, reason trail %+v", job.OpID, job.Reason)
				}
			})
			t.Run("preserved domain still there: the job fails", func(t *testing.T) {
				st := fakeState()
				xl, cfgDir := simNode(t, &st)
				cfg := filepath.Join(cfgDir, "web1.example.com")
				os.WriteFile(cfg, []byte("name = 'web1.example.com'\nmemory = 128\non_poweroff = 'preserve'\n"), 0o644)
				if out, err := xl("create", cfg); err != nil {
					t.Fatal(err, out)
				}
				if out, err := xl("sim", "poweroff", "web1.example.com"); err != nil {
					t.Fatal(err, out)
				}
				b := mk(t, st, 5*time.Second)
				j, err := b.client.StartUp(ctx, StartUpRequest{Name: "web1.example.com"})
				if !errors.Is(err, ErrJobFailed) || j.Status != JobError || j.ID == 0 {
					t.Errorf("got %+v, %v; want a failed job", j, err)
				}
			})
			t.Run("unknown instance", func(t *testing.T) {
				b := mk(t, fakeState(), 5*time.Second)
				if _, err := b.client.StartUp(ctx, StartUpRequest{Name: "gone.example.com"}); !errors.Is(err, ErrInstanceGone) {
					t.Errorf("want ErrInstanceGone, got %v", err)
				}
			})
			t.Run("defers while a job holds the instance", func(t *testing.T) {
				b := mk(t, fakeState(), 5*time.Second)
				holder, err := b.engine.HoldLock("db1.example.com", "OP_INSTANCE_SHUTDOWN")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := b.client.StartUp(ctx, StartUpRequest{Name: "db1.example.com"}); !errors.Is(err, ErrJobDeferred) {
					t.Fatalf("got %v; want ErrJobDeferred", err)
				}
				if err := b.engine.Finish(holder, "success", nil); err != nil {
					t.Fatal(err)
				}
				time.Sleep(100 * time.Millisecond) // a job left queued would run now
				if in := b.state(t).Instances[1]; in.AdminState != "down" {
					t.Errorf("db1 is admin %s after the lock freed: the deferred start ran", in.AdminState)
				}
			})
		})
	}
}

// TestCLINotMaster: on a node that is not the master every gnt-* command
// fails; the error says to use the RAPI backend.
func TestCLINotMaster(t *testing.T) {
	b := cliBackend(t, fakeState(), 5*time.Second)
	t.Setenv(ganetifake.EnvNode, "node2.example.com")
	ctx := context.Background()
	_, err1 := b.client.Instances(ctx, "node2.example.com")
	_, err2 := b.client.Locked(ctx, []string{"web1.example.com"})
	_, err3 := b.client.MarkDown(ctx, MarkDownRequest{Name: "web1.example.com"})
	for i, err := range []error{err1, err2, err3} {
		if !errors.Is(err, ErrNotMaster) || !strings.Contains(err.Error(), `backend = "rapi"`) {
			t.Errorf("call %d: %v", i, err)
		}
	}
}
