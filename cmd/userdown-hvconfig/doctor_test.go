package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"ganeti-userdown/internal/doctor"
	"ganeti-userdown/internal/testbin"
	"ganeti-userdown/testdata/ganetifake"
)

// doctorNode is a node laid out as the package installs it, under a
// temporary directory: the shim as sbin/xl, diverted (in a private dpkg
// admin dir) to real/xl, the Xen simulator there, every hook, the watcher
// hook, credentials for a RAPI fake, and a configuration naming all that.
type doctorNode struct {
	dir, shim, config, creds string
	env                      []string
}

func newDoctorNode(t *testing.T) *doctorNode {
	t.Helper()
	if _, err := exec.LookPath("dpkg-divert"); err != nil {
		t.Fatalf("dpkg-divert not found (apt-get install dpkg): %v", err)
	}
	n := &doctorNode{dir: t.TempDir()}
	n.shim = testbin.Build(t, "ganeti-userdown/cmd/userdown-hvconfig")
	sim := testbin.BuildAs(t, "ganeti-userdown/testdata/xensim", "xl")
	for _, d := range []string{"sbin", "real", "admin", "hooks/watcher", "state"} {
		mkdir(t, filepath.Join(n.dir, d))
	}
	symlink(t, n.shim, filepath.Join(n.dir, "sbin/xl"))
	symlink(t, sim, filepath.Join(n.dir, "real/xl"))
	write(t, filepath.Join(n.dir, "admin/diversions"),
		fmt.Sprintf("%s/sbin/xl\n%s/real/xl\n%s\n", n.dir, n.dir, doctor.Package), 0o644)
	hook := filepath.Join(n.dir, "userdown-hook")
	write(t, hook, "#!/bin/sh\nexit 0\n", 0o755)
	for _, d := range doctor.HookDirs {
		mkdir(t, filepath.Join(n.dir, "hooks", d))
		symlink(t, hook, filepath.Join(n.dir, "hooks", d, doctor.HookName))
	}
	write(t, filepath.Join(n.dir, "hooks/watcher", doctor.HookName), "#!/bin/sh\nexit 0\n", 0o755)

	rapi := ganetifake.Start(t, ganetifake.State{
		Cluster: ganetifake.ClusterInfo{Name: "cluster.example.com", Master: "node1.example.com"},
		Instances: []ganetifake.Instance{
			{Name: "web1", PrimaryNode: "node1.example.com", AdminState: "up", Hypervisor: "xen-pvm"},
			{Name: "db1", PrimaryNode: "node1.example.com", AdminState: "up", Hypervisor: "xen-pvm"},
		},
	})
	n.creds = filepath.Join(n.dir, "rapi.secret")
	write(t, n.creds, ganetifake.WriterUser+" "+ganetifake.WriterPassword+"\n", 0o600)
	n.config = filepath.Join(n.dir, "userdown.toml")
	write(t, n.config, fmt.Sprintf(`[xen]
command = %q
[cluster]
node = "node1.example.com"
rapi_url = %q
rapi_ca = %q
rapi_credentials = %q
[state]
dir = %q
`, filepath.Join(n.dir, "real/xl"), rapi.URL, rapi.CAFile, n.creds, filepath.Join(n.dir, "state")), 0o644)

	state := filepath.Join(n.dir, "xen.json")
	n.env = append(os.Environ(), "XENSIM_STATE="+state, "DPKG_ADMINDIR="+filepath.Join(n.dir, "admin"), "USERDOWN_CONFIG="+n.config)
	// web1 was started through the shim; db1 before the installation.
	for name, extra := range map[string]string{"web1": "on_poweroff = 'preserve'\non_crash = 'preserve'\n", "db1": ""} {
		cfg := filepath.Join(n.dir, name+".cfg")
		write(t, cfg, "name = '"+name+"'\nmemory = 128\n"+extra, 0o644)
		cmd := exec.Command(sim, "create", cfg)
		cmd.Env = n.env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("xensim create %s: %v\n%s", name, err, out)
		}
	}
	return n
}

func (n *doctorNode) doctor(t *testing.T, args ...string) (doctor.Report, int, string) {
	t.Helper()
	cmd := exec.Command(n.shim, append([]string{"doctor", "--json",
		"--sbin-dir", filepath.Join(n.dir, "sbin"),
		"--hooks-dir", filepath.Join(n.dir, "hooks"),
		"--real-dir", filepath.Join(n.dir, "real")}, args...)...)
	cmd.Env = n.env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	var r doctor.Report
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("doctor --json printed no report (%v):\n%s\nstderr:\n%s", err, out, stderr.String())
	}
	return r, code, stderr.String()
}

func statuses(r doctor.Report) map[string]doctor.Status {
	m := map[string]doctor.Status{}
	for _, c := range r.Checks {
		m[c.Check] = c.Status
	}
	return m
}

// TestDoctorOnAProtectedNode gathers every fact from a real layout, the
// Xen simulator and the RAPI fake: everything ok except the domain that
// was started before the installation, named in a warning.
func TestDoctorOnAProtectedNode(t *testing.T) {
	n := newDoctorNode(t)
	r, code, stderr := n.doctor(t)
	want := map[string]doctor.Status{
		"config": doctor.OK, "shim": doctor.OK, "toolstack": doctor.OK, "hooks": doctor.OK,
		"watcher-hook": doctor.OK, "credentials": doctor.OK, "state-dir": doctor.OK, "master": doctor.OK,
		"domains": doctor.Warn, "daemon": doctor.Warn, // no userdown-watchd on this node
	}
	if d := cmp.Diff(want, statuses(r)); d != "" {
		t.Errorf("statuses (-want +got):\n%s\nreport: %+v\nstderr: %s", d, r, stderr)
	}
	if code != 0 || !r.OK {
		t.Errorf("exit %d, ok %v: want 0 and true", code, r.OK)
	}
	for _, c := range r.Checks {
		if c.Check == "domains" && (!strings.Contains(c.Message, "db1 (on_crash=destroy, on_poweroff=destroy)") || strings.Contains(c.Message, "web1")) {
			t.Errorf("domains: %q, want db1 named with its actions and web1 not", c.Message)
		}
		if c.Check == "master" && !strings.Contains(c.Message, "2 instances with primary node node1.example.com") {
			t.Errorf("master: %q", c.Message)
		}
	}
}

// TestDoctorFindsBreakage breaks the node in several ways at once: each
// shows as a fail, and doctor exits 1.
func TestDoctorFindsBreakage(t *testing.T) {
	n := newDoctorNode(t)
	if err := os.Chmod(n.creds, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(n.dir, "hooks/instance-stop-pre.d", doctor.HookName)); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(n.dir, "hooks/watcher", doctor.HookName), 0o644); err != nil {
		t.Fatal(err)
	}
	// The toolstack package upgraded without the diversion: xl is Xen's again.
	if err := os.Remove(filepath.Join(n.dir, "sbin/xl")); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(n.dir, "sbin/xl"), "#!/bin/sh\n", 0o755)
	// Reference: doc/design.md, "State files": a state dir others may
	// write in is refused, and doctor fails on it.
	state := filepath.Join(n.dir, "state")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(state, 0o777); err != nil {
		t.Fatal(err)
	}

	r, code, _ := n.doctor(t)
	want := map[string]doctor.Status{
		"config": doctor.OK, "shim": doctor.Fail, "toolstack": doctor.OK, "hooks": doctor.Fail,
		// The RAPI client itself refuses credentials others can read.
		"watcher-hook": doctor.Fail, "credentials": doctor.Fail, "state-dir": doctor.Fail, "master": doctor.Fail,
		"domains": doctor.Warn, "daemon": doctor.Warn,
	}
	if d := cmp.Diff(want, statuses(r)); d != "" {
		t.Errorf("statuses (-want +got):\n%s\nreport: %+v", d, r)
	}
	if code != exitFailed || r.OK {
		t.Errorf("exit %d, ok %v: want %d and false", code, r.OK, exitFailed)
	}
}

// TestDoctorBadConfig reports the configuration's error (naming the line)
// as a fail and still checks the rest.
func TestDoctorBadConfig(t *testing.T) {
	n := newDoctorNode(t)
	write(t, n.config, "[xen]\ntoolstack = \"kvm\"\n", 0o644)
	r, code, _ := n.doctor(t)
	st := statuses(r)
	if st["config"] != doctor.Fail || st["hooks"] != doctor.OK || st["master"] != doctor.Warn {
		t.Errorf("statuses %v: want config fail, hooks ok, master not asked", st)
	}
	if code != exitFailed {
		t.Errorf("exit %d, want %d", code, exitFailed)
	}
	if !strings.Contains(r.Checks[0].Message, "toolstack") {
		t.Errorf("config: %q does not name the key", r.Checks[0].Message)
	}
}

func mkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, p string) {
	t.Helper()
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// TestDoctorUntrusted checks that doctor fails on what root must not
// trust: a credentials file owned by another user, and a configuration
// (with its [xen] command) anyone could rewrite.
// Reference: issue 14, point 2 ("doctor said ok").
func TestDoctorUntrusted(t *testing.T) {
	n := newDoctorNode(t)
	if err := os.Chown(n.creds, 65534, 0); err != nil {
		t.Fatal(err)
	}
	r, code, _ := n.doctor(t)
	if st := statuses(r); st["credentials"] != doctor.Fail || code != exitFailed {
		t.Errorf("credentials owned by uid 65534: statuses %v, exit %d", st, code)
	}

	open := filepath.Join(n.dir, "open")
	mkdir(t, open)
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	evil := filepath.Join(open, "evil.sh")
	write(t, evil, "#!/bin/sh\ntouch "+filepath.Join(n.dir, "ran")+"\n", 0o755)
	for _, mode := range []os.FileMode{0o644, 0o666} {
		write(t, n.config, fmt.Sprintf("[xen]\ncommand = %q\n", evil), mode)
		r, code, _ = n.doctor(t)
		if st := statuses(r); st["config"] != doctor.Fail || code != exitFailed {
			t.Errorf("config of mode %04o naming %s: statuses %v, exit %d", mode, evil, st, code)
		}
		culprit := open // the command's directory
		if mode == 0o666 {
			culprit = n.config
		}
		if msg := r.Checks[0].Message; !strings.Contains(msg, culprit) || !strings.Contains(msg, "not writable by group or others") {
			t.Errorf("config of mode %04o: %q does not name %s and the rule", mode, msg, culprit)
		}
	}
	if _, err := os.Stat(filepath.Join(n.dir, "ran")); err == nil {
		t.Errorf("doctor ran the untrusted command")
	}
}
