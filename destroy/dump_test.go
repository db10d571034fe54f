package destroy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"ganeti-userdown/internal/xen"
	"ganeti-userdown/internal/xen/xentest"
)

// Reference: design.md, "Configuration": "[crash] dump_dir: when set,
// dump-core crashed domains here before destroying; keep: dumps kept per
// instance".
func TestDumpCoreKeepsTheNewest(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dumps") // created on first use
	d := xen.Domain{Name: "db1.example.com", ID: 7}
	t0 := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	var paths []string
	for i := 0; i < 4; i++ {
		p, _, err := DumpCore(context.Background(), xentest.NewToolstack(d), d, dir, 2, t0.Add(time.Duration(i)*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, filepath.Base(p))
	}
	// Another instance's dump, whose name starts with this one's, stays.
	other := "db1.example.com.old.20260101T000000.000Z.core"
	if err := os.WriteFile(filepath.Join(dir, other), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := DumpCore(context.Background(), xentest.NewToolstack(d), d, dir, 2, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	want := []string{paths[3], "db1.example.com.20261125T040000.000Z.core", other}
	sort.Strings(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("dump dir (-want +got):\n%s", diff)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("dump dir: %v %v, want mode 0700", err, fi.Mode())
	}
}

func TestDumpCoreFailureWritesNothing(t *testing.T) {
	dir := t.TempDir()
	boom := errors.New("core dump failed (rc=-3)")
	x := xentest.NewToolstack(xen.Domain{Name: "a", ID: 3})
	x.DumpErr = boom
	p, pruned, err := DumpCore(context.Background(), x, xen.Domain{Name: "a", ID: 3}, dir, 3, time.Now())
	if !errors.Is(err, boom) || p != "" || pruned != nil {
		t.Errorf("DumpCore = %q, %v, %v; want no path and the toolstack's error", p, pruned, err)
	}
}

func TestDumpPathAndPruning(t *testing.T) {
	at := time.Date(2026, 11, 25, 12, 0, 1, 500e6, time.FixedZone("CET", 3600))
	if got, want := DumpPath("/var/crash/xen", "db1.example.com", at), "/var/crash/xen/db1.example.com.20261125T110001.500Z.core"; got != want {
		t.Errorf("DumpPath = %q, want %q", got, want)
	}
	names := []string{
		"db1.example.com.20261125T110001.500Z.core",
		"db1.example.com.20261120T000000.000Z.core",
		"db1.example.com.20261122T000000.000Z.core",
		"db1.example.com.20261124T000000.000Z.core",
		"db1.example.com.x.20261101T000000.000Z.core",  // instance db1.example.com.x
		"db1.example.com.20261101T000000.000Z.core.gz", // not a dump of ours
		"notes.txt",
	}
	want := []string{"db1.example.com.20261120T000000.000Z.core"}
	if d := cmp.Diff(want, DumpsToPrune(names, "db1.example.com", 3)); d != "" {
		t.Errorf("DumpsToPrune keep 3 (-want +got):\n%s", d)
	}
	want = []string{
		"db1.example.com.20261120T000000.000Z.core",
		"db1.example.com.20261122T000000.000Z.core",
		"db1.example.com.20261124T000000.000Z.core",
	}
	if d := cmp.Diff(want, DumpsToPrune(names, "db1.example.com", 1)); d != "" {
		t.Errorf("DumpsToPrune keep 1 (-want +got):\n%s", d)
	}
	if got := DumpsToPrune(names, "db1.example.com.x", 1); len(got) != 0 {
		t.Errorf("DumpsToPrune for db1.example.com.x = %v, want none", got)
	}
}
