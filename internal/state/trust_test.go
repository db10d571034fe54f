package state

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"ganeti-userdown/internal/testbin"
	"ganeti-userdown/internal/trust/trusttest"
	"ganeti-userdown/internal/xen"
)

// Tests of doc/design.md, "State files": the state directory is trusted
// only when root's and writable by root alone, nothing in it is reached
// through a symbolic link, every read is bounded, and no record, whatever
// it says, outlives intent_ttl or dates from the future.

func modeOf(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// The first write creates the state dir and intents/ 0700, files 0600.
func TestStateDirCreatedPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lib", "ganeti-userdown")
	s := Open(dir)
	if err := s.RecordIntent(hookIntent("a", "stop", t0.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveObservations(Observations{}); err != nil {
		t.Fatal(err)
	}
	l, err := s.LockRun(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	l.Unlock()
	for p, want := range map[string]os.FileMode{
		dir:                           0o700,
		filepath.Join(dir, "intents"): 0o700,
		s.ObservationsPath():          0o600,
		s.RunLockPath():               0o600,
		filepath.Join(dir, "intents", "instance@a@stop.json"): 0o600,
	} {
		if got := modeOf(t, p); got != want {
			t.Errorf("%s: mode %04o, want %04o", p, got, want)
		}
	}
	if problems := s.Problems(); len(problems) > 0 {
		t.Errorf("Problems of a fresh dir: %v", problems)
	}
}

// A state dir someone else may write in is refused by every reader and
// writer, with an error naming the directory, its owner and its mode;
// nothing is written to it.
func TestUnsafeStateDirRefused(t *testing.T) {
	type setup func(t *testing.T, dir string) (culprit string)
	cases := map[string]setup{
		"world-writable": func(t *testing.T, dir string) string {
			must(t, os.Chmod(dir, 0o777))
			return dir
		},
		"group-writable intents": func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "intents")
			must(t, os.Mkdir(p, 0o770))
			must(t, os.Chmod(p, 0o770))
			return p
		},
		"writable parent": func(t *testing.T, dir string) string {
			must(t, os.Chmod(filepath.Dir(dir), 0o777))
			return filepath.Dir(dir)
		},
		"another owner": func(t *testing.T, dir string) string {
			if os.Geteuid() != 0 {
				t.Skip("giving the dir another owner needs root: run the tests as root (CI does)")
			}
			must(t, os.Chown(dir, 4242, 4242))
			return dir
		},
	}
	for name, set := range cases {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "parent", "state")
			must(t, os.MkdirAll(dir, 0o700))
			culprit := set(t, dir)
			s := Open(dir)
			before := testbin.Snapshot(t, filepath.Dir(dir))
			var st syscall.Stat_t
			must(t, syscall.Stat(culprit, &st))
			wantIn := []string{culprit, fmt.Sprintf("uid %d", st.Uid), fmt.Sprintf("mode %04o", st.Mode&0o7777)}
			check := func(what string, err error) {
				t.Helper()
				if err == nil {
					t.Errorf("%s: accepted an unsafe state dir", what)
					return
				}
				var u *UnsafeDirError
				if !errors.As(err, &u) {
					t.Errorf("%s: err = %v, want an *UnsafeDirError", what, err)
				}
				for _, w := range wantIn {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("%s: error %q does not say %q", what, err, w)
					}
				}
			}
			check("RecordIntent", s.RecordIntent(hookIntent("a", "stop", t0.Add(time.Hour))))
			check("Verify", s.Verify())
			check("ClearIntents", s.ClearIntents("a", ""))
			check("PruneIntents", errors.Join(s.PruneIntents(t0)...))
			if culprit == dir || culprit == filepath.Dir(dir) {
				check("SaveObservations", s.SaveObservations(Observations{}))
				_, err := s.LockRun(context.Background())
				check("LockRun", err)
				_, err = s.ReadLock(context.Background())
				check("ReadLock", err)
				_, problems := s.LoadObservations(t0)
				check("LoadObservations", errors.Join(problems...))
			}
			_, problems := s.Intents(t0)
			check("Intents", errors.Join(problems...))
			check("Problems", errors.Join(s.Problems()...))
			if d := cmp.Diff(before, testbin.Snapshot(t, filepath.Dir(dir))); d != "" {
				t.Errorf("an unsafe state dir was written to (-before +after):\n%s", d)
			}
		})
	}
}

// allocated is how many bytes fn allocated.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A run.lock planted as a symbolic link does not make the lock create
// (or open) its target.
func TestPlantedRunLockLinkRefused(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(t.TempDir(), "created-by-root")
	must(t, os.Symlink(target, filepath.Join(dir, "run.lock")))
	s := Open(dir)
	if l, err := s.LockRun(context.Background()); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		l.Unlock()
		t.Errorf("LockRun through a planted link: err = %v, want a refusal naming the link", err)
	}
	if l, err := s.ReadLock(context.Background()); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		l.Unlock()
		t.Errorf("ReadLock through a planted link: err = %v, want a refusal naming the link", err)
	}
	if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the link's target was created: %v", err)
	}
	if p := s.Problems(); len(p) != 1 || !strings.Contains(p[0].Error(), filepath.Join(dir, "run.lock")) {
		t.Errorf("Problems = %v, want the link", p)
	}
}

// An intents/ planted as a symbolic link to another directory is never
// written into nor read from.
func TestPlantedIntentsLinkRefused(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	// What the other directory holds must not count either.
	must(t, Open(other).RecordIntent(hookIntent("web1", "stop", t0.Add(time.Hour))))
	must(t, os.Symlink(filepath.Join(other, "intents"), filepath.Join(dir, "intents")))
	before := testbin.Snapshot(t, other)
	s := Open(dir)
	if err := s.RecordIntent(hookIntent("db1", "stop", t0.Add(time.Hour))); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("RecordIntent into a planted link: err = %v, want a refusal naming the link", err)
	}
	if err := s.ClearIntents("web1", ""); err == nil {
		t.Errorf("ClearIntents through a planted link succeeded")
	}
	live, problems := s.Intents(t0)
	if len(live) != 0 || len(problems) != 1 || !strings.Contains(problems[0].Error(), "symbolic link") {
		t.Errorf("Intents through a planted link: %v, %v; want none and the refusal", live, problems)
	}
	if p := s.PruneIntents(t0.Add(2 * time.Hour)); len(p) != 1 {
		t.Errorf("PruneIntents through a planted link: %v, want the refusal", p)
	}
	if d := cmp.Diff(before, testbin.Snapshot(t, other)); d != "" {
		t.Errorf("the link's target was changed (-before +after):\n%s", d)
	}
}

// An intent file planted as a symbolic link (to a file holding a valid
// intent) is not read: it is reported unreadable and blocks the instance
// its name gives, never authorises anything.
func TestPlantedIntentFileLinkRefused(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	s := Open(dir)
	must(t, s.RecordIntent(hookIntent("good", "stop", t0.Add(time.Hour))))
	b := []byte(`{"instance":"web1","op":"stop","source":"hook","created":"2026-11-25T10:00:00Z","expires":"2026-11-25T11:00:00Z"}`)
	must(t, os.WriteFile(filepath.Join(other, "x.json"), b, 0o600))
	link := filepath.Join(dir, "intents", "instance@web1@stop.json")
	must(t, os.Symlink(filepath.Join(other, "x.json"), link))
	live, problems := s.Intents(t0)
	if len(live) != 1 || live[0].Instance != "good" {
		t.Errorf("live = %+v, want only good", live)
	}
	if len(problems) != 1 || !strings.Contains(problems[0].Error(), link) || !strings.Contains(problems[0].Error(), "symbolic link") {
		t.Errorf("problems = %v, want one naming the link", problems)
	}
	if d := cmp.Diff([]IntentKey{{Instance: "web1", Op: "stop"}}, Unreadable(problems)); d != "" {
		t.Errorf("unreadable (-want +got):\n%s", d)
	}
}

// An intent whose file says it expires in 9999 counts for intent_ttl
// after its creation, no longer; one created in the future is taken as
// created now (and reported), and the prune of a real run rewrites it
// bounded, so it too expires intent_ttl later.
//
// Reference: issue 14 #3 and #8.
func TestIntentLifeBoundedByTTL(t *testing.T) {
	dir := t.TempDir()
	ttl := time.Hour
	s := Open(dir).WithIntentTTL(ttl)
	forever := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	must(t, s.RecordIntent(Intent{Instance: "far", Op: "stop", Source: "hook", Created: t0, Expires: forever}))
	must(t, s.RecordIntent(Intent{Instance: "future", Op: "stop", Source: "hook", Created: forever, Expires: forever}))

	live, problems := s.Intents(t0.Add(30 * time.Minute))
	now := t0.Add(30 * time.Minute)
	want := []Intent{
		{Instance: "far", Op: "stop", Source: "hook", Created: t0, Expires: t0.Add(ttl)},
		{Instance: "future", Op: "stop", Source: "hook", Created: now, Expires: now.Add(ttl)},
	}
	if d := cmp.Diff(want, live); d != "" {
		t.Errorf("bounded intents (-want +got):\n%s", d)
	}
	if len(problems) != 2 || !strings.Contains(problems[0].Error(), "capped") || !strings.Contains(problems[1].Error(), "in the future") {
		t.Errorf("problems = %v, want the cap and the future creation reported", problems)
	}
	if live, _ := s.Intents(t0.Add(ttl)); len(live) != 1 || live[0].Instance != "future" {
		t.Errorf("at creation + ttl: live = %+v, want only the one dated in the future", live)
	}
	// The real run's prune rewrites the future one bounded from now on.
	if p := s.PruneIntents(now); len(p) > 0 {
		t.Fatal(p)
	}
	if live, _ := s.Intents(now.Add(ttl)); len(live) != 0 {
		t.Errorf("intent_ttl after the prune: live = %+v, want none", live)
	}
	if p := s.PruneIntents(now.Add(ttl)); len(p) > 0 {
		t.Fatal(p)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "intents")); len(ents) != 1 { // the lock
		t.Errorf("left after both expired and were pruned: %v", ents)
	}
}

// A huge intent file is refused by its size, naming it, at a cost far
// below its size; it blocks its instance (never marks it down) and the
// other intents still count.
//
// Reference: issue 14 #6.
func TestOversizedIntentRefusedCheaply(t *testing.T) {
	dir := t.TempDir()
	s := Open(dir)
	must(t, s.RecordIntent(hookIntent("good", "stop", t0.Add(time.Hour))))
	big := filepath.Join(dir, "intents", "instance@big@reboot.json")
	trusttest.Sparse(t, big, 512<<20)
	var live []Intent
	var problems []error
	if got := allocated(func() { live, problems = s.Intents(t0) }); got > 1<<20 {
		t.Errorf("reading the intents allocated %d bytes, want under 1 MiB", got)
	}
	if len(live) != 1 || live[0].Instance != "good" {
		t.Errorf("live = %+v, want only good", live)
	}
	if len(problems) != 1 || !strings.Contains(problems[0].Error(), big) || !strings.Contains(problems[0].Error(), "more than") {
		t.Errorf("problems = %v, want one naming %s and its size", problems, big)
	}
	if d := cmp.Diff([]IntentKey{{Instance: "big", Op: "reboot"}}, Unreadable(problems)); d != "" {
		t.Errorf("unreadable (-want +got):\n%s", d)
	}
	// Blocking lasts intent_ttl after the file's last change, no longer.
	must(t, os.Chtimes(big, t0, t0))
	if _, problems := s.Intents(t0.Add(DefaultIntentTTL)); len(Unreadable(problems)) != 0 {
		t.Errorf("an unreadable intent still blocks intent_ttl after its last change: %v", problems)
	}
}

// Observations: a huge file is refused cheaply (naming it), a planted
// link is not followed (neither read nor written through), and a time in
// the future is taken as now and reported.
//
// Reference: issue 14 #6 and #8.
func TestObservationsBoundedAndNotFuture(t *testing.T) {
	t.Run("oversized", func(t *testing.T) {
		s := Open(t.TempDir())
		trusttest.Sparse(t, s.ObservationsPath(), 512<<20)
		var o Observations
		var problems []error
		if got := allocated(func() { o, problems = s.LoadObservations(t0) }); got > 1<<20 {
			t.Errorf("allocated %d bytes, want under 1 MiB", got)
		}
		if len(o) != 0 || len(problems) != 1 || !strings.Contains(problems[0].Error(), s.ObservationsPath()) {
			t.Errorf("got %v, %v; want none and one problem naming the file", o, problems)
		}
	})
	t.Run("link", func(t *testing.T) {
		s := Open(t.TempDir())
		target := filepath.Join(t.TempDir(), "theirs")
		must(t, Open(filepath.Dir(target)).SaveObservations(Observations{"name:x#1": {Name: "x", DomID: 1, Since: t0}}))
		must(t, os.Symlink(filepath.Join(filepath.Dir(target), "observations.json"), s.ObservationsPath()))
		before := testbin.Snapshot(t, filepath.Dir(target))
		if o, problems := s.LoadObservations(t0); len(o) != 0 || len(problems) != 1 || !strings.Contains(problems[0].Error(), "symbolic link") {
			t.Errorf("load through a link: %v, %v; want nothing and the refusal", o, problems)
		}
		if err := s.SaveObservations(Observations{}); err == nil || !strings.Contains(err.Error(), "symbolic link") {
			t.Errorf("save through a link: err = %v, want the refusal", err)
		}
		if d := cmp.Diff(before, testbin.Snapshot(t, filepath.Dir(target))); d != "" {
			t.Errorf("the link's target changed (-before +after):\n%s", d)
		}
	})
	t.Run("future", func(t *testing.T) {
		s := Open(t.TempDir())
		future := t0.Add(72 * time.Hour)
		must(t, s.SaveObservations(Observations{
			"uuid:u-a": {Name: "a", DomID: 3, UUID: "u-a", Since: future},
			"uuid:u-b": {Name: "b", DomID: 4, UUID: "u-b", Since: t0.Add(-time.Minute)},
		}))
		o, problems := s.LoadObservations(t0)
		want := Observations{
			"uuid:u-a": {Name: "a", DomID: 3, UUID: "u-a", Since: t0},
			"uuid:u-b": {Name: "b", DomID: 4, UUID: "u-b", Since: t0.Add(-time.Minute)},
		}
		if d := cmp.Diff(want, o); d != "" {
			t.Errorf("(-want +got):\n%s", d)
		}
		if len(problems) != 1 || !strings.Contains(problems[0].Error(), "in the future") || !strings.Contains(problems[0].Error(), "a (domid 3)") {
			t.Errorf("problems = %v, want the future observation of a reported", problems)
		}
		d := xen.Domain{Name: "a", ID: 3, UUID: "u-a"}
		if since, ok := o.Since(d); !ok || since.After(t0) {
			t.Errorf("Since(a) = %v, %v; want at most now", since, ok)
		}
	})
}

// While another process holds intents/.lock past the bound, the intent
// is still recorded (under a name of its own, which no writer replaces)
// and the caller is told; it counts, clears and prunes as any other.
//
// Reference: issue 14 #12.
func TestIntentRecordedWhileLockHeld(t *testing.T) {
	dir := t.TempDir()
	s := Open(dir)
	s.lockWait = 50 * time.Millisecond
	must(t, s.RecordIntent(shimIntent("u-1", t0.Add(time.Hour)))) // makes intents/
	r, err := s.openRoot(false)
	must(t, err)
	defer r.close()
	d, err := r.sub("intents", false)
	must(t, err)
	defer d.close()
	held, err := lockAt(context.Background(), d, ".lock", true)
	must(t, err)

	in := shimIntent("U-2", t0.Add(time.Hour))
	err = s.RecordIntent(in)
	var ce *ContendedError
	if !errors.As(err, &ce) || !strings.Contains(ce.File, "uuid@u-2@shutdown~") {
		t.Fatalf("RecordIntent with the lock held: err = %v, want a *ContendedError naming the file", err)
	}
	if !strings.Contains(err.Error(), ".lock held") {
		t.Errorf("error %q does not say the lock was held", err)
	}
	live, problems := s.Intents(t0)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	if len(live) != 2 || live[1].UUID != "U-2" {
		t.Errorf("live = %+v, want u-1 and U-2", live)
	}
	held.Unlock()
	must(t, s.ClearUUIDIntents("u-2"))
	if live, _ := s.Intents(t0); len(live) != 1 {
		t.Errorf("after clearing u-2: %+v", live)
	}
	// Pruned once expired, as any intent.
	err = s.RecordIntent(in)
	if err != nil {
		t.Fatal(err)
	}
	must(t, errors.Join(s.PruneIntents(t0.Add(2*time.Hour))...))
	if ents, _ := os.ReadDir(filepath.Join(dir, "intents")); len(ents) != 1 {
		t.Errorf("left after pruning: %v", ents)
	}
}

// Reading (intents, observations, the read lock, the checks) leaves the
// state dir byte-identical: names, modes and contents.
//
// Reference: doc/design.md, "State files": reading changes nothing.
func TestReadingChangesNothing(t *testing.T) {
	dir := t.TempDir()
	s := Open(dir)
	must(t, s.RecordIntent(hookIntent("old", "stop", t0)))
	must(t, s.RecordIntent(Intent{Instance: "future", Op: "stop", Source: "hook", Created: t0.Add(time.Hour), Expires: t0.Add(2 * time.Hour)}))
	must(t, s.SaveObservations(Observations{"uuid:u": {Name: "a", DomID: 1, UUID: "u", Since: t0.Add(time.Hour)}}))
	must(t, os.WriteFile(filepath.Join(dir, "intents", "instance@bad@stop.json"), []byte("{"), 0o600))
	before := testbin.Snapshot(t, dir)
	s.Intents(t0.Add(time.Minute))
	s.LoadObservations(t0)
	l, err := s.ReadLock(context.Background())
	must(t, err)
	if l != nil {
		t.Errorf("ReadLock without a run.lock returned a lock")
	}
	must(t, s.Verify())
	s.Problems()
	if d := cmp.Diff(before, testbin.Snapshot(t, dir)); d != "" {
		t.Errorf("reading changed the state dir (-before +after):\n%s", d)
	}
	missing := Open(filepath.Join(dir, "absent"))
	missing.Intents(t0)
	missing.LoadObservations(t0)
	if l, err := missing.ReadLock(context.Background()); l != nil || err != nil {
		t.Errorf("ReadLock of a missing dir: %v, %v", l, err)
	}
	if _, err := os.Lstat(missing.Dir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("reading a missing state dir created it: %v", err)
	}
}

// Problems lists what a doctor must show: links, non-regular files and
// oversized files, in the dir and in intents/.
func TestProblemsForDoctor(t *testing.T) {
	dir := t.TempDir()
	s := Open(dir)
	must(t, s.RecordIntent(hookIntent("a", "stop", t0.Add(time.Hour))))
	must(t, os.Symlink("/etc/passwd", filepath.Join(dir, "observations.json")))
	trusttest.Fifo(t, filepath.Join(dir, "intents", "instance@b@stop.json"))
	trusttest.Sparse(t, filepath.Join(dir, "intents", "instance@c@stop.json"), intentLimit+1)
	var got []string
	for _, p := range s.Problems() {
		got = append(got, p.Error())
	}
	want := []string{
		filepath.Join(dir, "observations.json") + " is a symbolic link",
		filepath.Join(dir, "intents", "instance@b@stop.json") + " is not a regular file",
		filepath.Join(dir, "intents", "instance@c@stop.json") + " is 65537 bytes",
	}
	if len(got) != len(want) {
		t.Fatalf("Problems = %q, want %d", got, len(want))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("problem %d = %q, want it to start %q", i, got[i], want[i])
		}
	}
}
