package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"ganeti-userdown/testdata/xensim/simlog"
)

// The source sends through the command Ganeti gives with -s (here it runs
// the target node's migrate-receive instead of socat to it); the domain ends running on
// the target with its UUID and actions, and the source forgets it
// without destroying it.
func TestMigrateBetweenNodes(t *testing.T) {
	src, dst := newNode(t, "xl"), newNode(t, "xl")
	cfg := src.config("mig1.example.com", "on_poweroff = 'preserve'", "uuid = '5c7c8ea0-1b2d-4e5f-8a9b-0c1d2e3f4a5b'")
	src.ok("create", cfg)
	transport := fmt.Sprintf("env XENSIM_STATE=%s XENSIM_LOG=%s %s migrate-receive #",
		filepath.Join(dst.dir, "state.json"), filepath.Join(dst.dir, "calls.log"), dst.bin)
	r := src.run("migrate", "-s", transport, "-C", cfg, "mig1.example.com", "198.51.100.11")
	if r.code != 0 || !strings.Contains(r.stderr, "Migration successful") {
		t.Fatalf("migrate: %+v", r)
	}
	if _, ok := src.domains()["mig1.example.com"]; ok {
		t.Errorf("source still lists the domain: %v", src.domains())
	}
	got, ok := dst.domains()["mig1.example.com"]
	if !ok || got.UUID != "5c7c8ea0-1b2d-4e5f-8a9b-0c1d2e3f4a5b" || !got.State.Alive() {
		t.Fatalf("target: %+v (found %v)", got, ok)
	}
	if live, err := simlog.LiveDestroys(src.log()); err != nil || len(live) != 0 {
		t.Errorf("source destroyed a live domain: %v %v", live, err)
	}
	// The actions travel with the domain: a poweroff on the target is kept.
	dst.ok("sim", "poweroff", "mig1.example.com")
	if st := dst.domains()["mig1.example.com"].State.Letters; st != "---s--" {
		t.Errorf("after poweroff on the target: %q, want ---s--", st)
	}
}

// A target that already has the name refuses; the source keeps running
// the domain under its own name.
func TestMigrateRefusedKeepsSource(t *testing.T) {
	src, dst := newNode(t, "xl"), newNode(t, "xl")
	src.ok("create", src.config("mig2.example.com"))
	dst.ok("create", dst.config("mig2.example.com"))
	transport := fmt.Sprintf("env XENSIM_STATE=%s %s migrate-receive #", filepath.Join(dst.dir, "state.json"), dst.bin)
	r := src.run("migrate", "-s", transport, "mig2.example.com", "198.51.100.11")
	if r.code == 0 || !strings.Contains(r.stderr, "already exists") {
		t.Fatalf("migrate onto a taken name: %+v", r)
	}
	d, ok := src.domains()["mig2.example.com"]
	if !ok || !d.State.Alive() {
		t.Errorf("source after a refused migration: %+v (found %v)", d, ok)
	}
}
