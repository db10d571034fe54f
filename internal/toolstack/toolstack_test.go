package toolstack

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestChooseToolstack checks the order the shim tries toolstacks in:
// [xen] command, the diverted one, the distribution's (the running
// hypervisor's version, else the newest installed).
// Reference: issue 14, point 1; doc/design.md, "Shim".
func TestChooseToolstack(t *testing.T) {
	root := t.TempDir()
	exe := func(rel string) string {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	l := Layout{RealDir: filepath.Join(root, "real"), LibDir: filepath.Join(root, "lib"), HypervisorVersion: filepath.Join(root, "sys")}
	configured := exe("sbin/xl-configured")
	v49 := exe("lib/xen-4.9/bin/xl")
	v417 := exe("lib/xen-4.17/bin/xl")
	exe("lib/xen-4.17/bin/xm-not-this")
	missing := filepath.Join(root, "gone/xl")

	type result struct {
		Chosen  string
		Skipped []string
	}
	choose := func(name, configured string) result {
		c, s := ChooseToolstack(name, configured, l)
		r := result{Chosen: c.Path}
		for _, t := range s {
			r.Skipped = append(r.Skipped, t.Source+": "+t.Problem)
		}
		return r
	}
	if diff := cmp.Diff(result{Chosen: configured}, choose("xl", configured)); diff != "" {
		t.Errorf("configured (-want +got):\n%s", diff)
	}
	want := result{Chosen: v417, Skipped: []string{"[xen] command: " + missing + " does not exist", "diverted: " + filepath.Join(l.RealDir, "xl") + " does not exist"}}
	if diff := cmp.Diff(want, choose("xl", missing)); diff != "" {
		t.Errorf("newest distribution's (-want +got):\n%s", diff)
	}
	if err := os.MkdirAll(l.HypervisorVersion, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(l.HypervisorVersion, "major"), []byte("4\n"), 0o644)
	os.WriteFile(filepath.Join(l.HypervisorVersion, "minor"), []byte("9\n"), 0o644)
	if got := choose("xl", "").Chosen; got != v49 {
		t.Errorf("running hypervisor 4.9: chose %q, want %q", got, v49)
	}
	diverted := exe("real/xl")
	if got := choose("xl", missing).Chosen; got != diverted {
		t.Errorf("with a diverted toolstack: chose %q, want %q", got, diverted)
	}
	if got := choose("xm", missing); got.Chosen != "" || len(got.Skipped) != 2 {
		t.Errorf("no xm anywhere: %+v", got)
	}
}
