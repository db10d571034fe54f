package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"ganeti-userdown/internal/state"
	"ganeti-userdown/internal/testbin"
	"ganeti-userdown/internal/xen"
)

// A plain `userdown-detect` and `userdown-destroy --dry-run` only read:
// with shutdowns to observe, an expired intent to prune, an intent dated
// in the future and a corrupt one, the state dir is byte-identical after
// them (names, modes, contents), and a missing one is not created.
//
// Reference: doc/design.md, "State files": reading changes nothing.
func TestReadingRunsChangeNothing(t *testing.T) {
	for _, seeded := range []bool{true, false} {
		name := "no state dir"
		if seeded {
			name = "seeded state dir"
		}
		t.Run(name, func(t *testing.T) {
			n := newNode(t, xen.XL, []instance{{name: "web1.example.com", admin: "up"}, {name: "db1.example.com", admin: "up"}}, "")
			n.start("web1.example.com")
			n.start("db1.example.com")
			n.xl("sim", "poweroff", "web1.example.com")
			n.xl("sim", "crash", "db1.example.com")
			if seeded {
				st := state.Open(n.stateDir)
				now := time.Now()
				for _, in := range []state.Intent{
					{Instance: "old.example.com", Op: "stop", Source: "hook", Created: now.Add(-2 * time.Hour), Expires: now.Add(-time.Hour)},
					{Instance: "later.example.com", Op: "stop", Source: "hook", Created: now.Add(24 * time.Hour), Expires: now.Add(25 * time.Hour)},
				} {
					if err := st.RecordIntent(in); err != nil {
						t.Fatal(err)
					}
				}
				if err := os.WriteFile(filepath.Join(n.stateDir, "intents", "instance@bad.example.com@stop.json"), []byte("{"), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := st.SaveObservations(state.Observations{}); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(n.stateDir+"/run.lock", nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			before := testbin.Snapshot(t, n.stateDir)
			for _, cmd := range [][]string{
				{n.detect}, {n.detect, "--json"},
				{n.destroy, "--dry-run"}, {n.destroy, "--dry-run", "--json"},
			} {
				out, errs, code := n.run(cmd[0], cmd[1:]...)
				if code != 0 {
					t.Fatalf("%v: exit %d: %s", cmd, code, errs)
				}
				if strings.Contains(strings.Join(cmd, " "), "destroy --dry-run") && !strings.Contains(out, "db1.example.com") {
					t.Errorf("%v: the crashed domain is not in the report:\n%s", cmd, out)
				}
				if d := cmp.Diff(before, testbin.Snapshot(t, n.stateDir)); d != "" {
					t.Fatalf("%v changed the state dir (-before +after):\n%s", cmd, d)
				}
			}
			if _, ok := n.domain("db1.example.com"); !ok {
				t.Errorf("a dry run destroyed db1")
			}
			// A real run writes: the observations, the prune.
			n.watcher()
			if _, err := os.Stat(filepath.Join(n.stateDir, "observations.json")); err != nil {
				t.Errorf("the real run saved no observations: %v", err)
			}
			if _, err := os.Stat(filepath.Join(n.stateDir, "intents", "instance@old.example.com@stop.json")); seeded && !os.IsNotExist(err) {
				t.Errorf("the real run did not prune the expired intent: %v", err)
			}
		})
	}
}

// While another process holds intents/.lock, `xl shutdown -w` through the
// shim waits for it a bounded time, records its intent all the same, says
// so loudly, and the shutdown is host-initiated: never marked down.
//
// Reference: doc/design.md, "State files" (issue 14 #12).
func TestShutdownWhileIntentsLockHeld(t *testing.T) {
	n := newNode(t, xen.XL, []instance{{name: "web1.example.com", admin: "up"}}, "")
	shim := n.installShim()
	n.start("web1.example.com")
	st := state.Open(n.stateDir)
	if err := st.RecordIntent(state.Intent{Instance: "other.example.com", Op: "stop", Source: "hook", Created: time.Now(), Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(filepath.Join(n.stateDir, "intents", ".lock"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, errs, code := n.run(shim, "shutdown", "-w", "web1.example.com")
	took := time.Since(start)
	if code != 0 {
		t.Fatalf("shim shutdown -w: exit %d: %s", code, errs)
	}
	if !strings.Contains(errs, "INTENTS LOCK HELD") || !strings.Contains(errs, "level=ERROR") {
		t.Errorf("the shim did not say loudly that the lock was held:\n%s", errs)
	}
	t.Logf("shutdown -w with the intents lock held took %s", took.Round(time.Millisecond))
	if got := n.report()["web1.example.com"]; got != "host-initiated" {
		t.Errorf("decision %q, want host-initiated", got)
	}
	syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	n.watcher()
	if s := n.instanceState("web1.example.com"); s != "up" {
		t.Errorf("Ganeti's own shutdown was marked down: %q", s)
	}
}

// The attacks on the state dir, through the real binaries: a run.lock
// planted as a link makes no run create its target, and a state dir
// others may write in stops detect and destroy (exit 3, nothing changed:
// its intents could allow a destroy).
//
// Reference: doc/design.md, "State files"; "Decisions", safety rule 4.
func TestUntrustedStateDirRefused(t *testing.T) {
	n := newNode(t, xen.XL, []instance{{name: "web1.example.com", admin: "up"}}, "")
	n.start("web1.example.com")
	n.xl("sim", "poweroff", "web1.example.com")
	if err := os.MkdirAll(n.stateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(n.dir, "created-by-root")
	if err := os.Symlink(target, filepath.Join(n.stateDir, "run.lock")); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{{n.detect, "--mark-down"}, {n.destroy}, {n.detect}, {n.destroy, "--dry-run"}} {
		out, errs, code := n.run(cmd[0], cmd[1:]...)
		if code != 3 || out != "" || !strings.Contains(errs, "symbolic link") {
			t.Errorf("%v with a planted run.lock: exit %d, stdout %q; want 3, nothing, and the link named\n%s", cmd, code, out, errs)
		}
	}
	if _, err := os.Lstat(target); !os.IsNotExist(err) {
		t.Errorf("the planted link's target was created: %v", err)
	}

	if err := os.Remove(filepath.Join(n.stateDir, "run.lock")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(n.stateDir, 0o777); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{{n.detect, "--mark-down"}, {n.destroy}, {n.detect}} {
		out, errs, code := n.run(cmd[0], cmd[1:]...)
		if code != 3 || out != "" || !strings.Contains(errs, n.stateDir) || !strings.Contains(errs, "mode 0777") {
			t.Errorf("%v with a 0777 state dir: exit %d, stdout %q; want 3, nothing, and the dir and its mode named\n%s", cmd, code, out, errs)
		}
	}
	if s := n.instanceState("web1.example.com"); s != "up" {
		t.Errorf("admin state %q, want up", s)
	}
	if _, ok := n.domain("web1.example.com"); !ok {
		t.Errorf("domain destroyed from an untrusted state dir")
	}
	if ents, _ := os.ReadDir(n.stateDir); len(ents) != 0 {
		t.Errorf("written into the untrusted state dir: %v", ents)
	}
}
