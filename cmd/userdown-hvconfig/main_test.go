package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"ganeti-userdown/internal/testbin"
)

func TestMain(m *testing.M) { testbin.Main(m) }

// call is one invocation the fake toolstack recorded.
type call struct {
	Argv     []string `json:"argv"`
	Stdin    string   `json:"stdin"`
	Env      []string `json:"env"`
	Cwd      string   `json:"cwd"`
	Captured *string  `json:"captured"`
}

// rig is a node directory with the built shim, the fake toolstack and a
// configuration pointing at it.
type rig struct {
	dir, shim, fake, config, log string
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{dir: t.TempDir()}
	r.shim = testbin.Build(t, "ganeti-userdown/cmd/userdown-hvconfig")
	r.fake = testbin.Build(t, "ganeti-userdown/cmd/userdown-hvconfig/testdata/faketoolstack")
	r.config = filepath.Join(r.dir, "userdown.toml")
	r.log = filepath.Join(r.dir, "calls.log")
	r.writeConfig(t, fmt.Sprintf("[xen]\ncommand = %q\nconfig_dir = %q\n", r.fake, r.dir))
	return r
}

func (r *rig) writeConfig(t *testing.T, s string) {
	t.Helper()
	if err := os.WriteFile(r.config, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (r *rig) file(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(r.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// result is what a run of a binary produced.
type result struct {
	code           int
	stdout, stderr string
}

// run executes bin with args; env is added to a minimal environment.
func (r *rig) run(t *testing.T, bin string, stdin string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = r.dir
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "USERDOWN_CONFIG=" + r.config, "FAKE_TOOLSTACK_LOG=" + r.log}, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	default:
		t.Fatalf("run %s: %v", bin, err)
	}
	return res
}

func (r *rig) calls(t *testing.T) []call {
	t.Helper()
	f, err := os.Open(r.log)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var calls []call
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var c call
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("call log: %v", err)
		}
		calls = append(calls, c)
	}
	return calls
}

// linkAs makes the shim available under name (xl or xm), as the package
// installs it in place of the toolstack.
func (r *rig) linkAs(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(r.dir, "sbin", name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(r.shim, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestShimPassesThrough checks that the toolstack gets exactly the
// arguments, stdin, environment and working directory, and that its
// stdout, stderr and exit status come back unchanged.
// Reference: design.md, "Shim": "The shim execs the real toolstack with
// the same arguments, stdin, stdout, stderr and exit status".
func TestShimPassesThrough(t *testing.T) {
	r := newRig(t)
	xl := r.linkAs(t, "xl")
	env := []string{"FAKE_TOOLSTACK_EXIT=7", "FAKE_TOOLSTACK_STDOUT=Name ID\n", "FAKE_TOOLSTACK_STDERR=warn\n", "GANETI_X=1"}
	for _, tc := range []struct {
		name string
		bin  string
		args []string
		want []string
	}{
		{"exec --", r.shim, []string{"exec", "--", "list", "-v", "--", "x y"}, []string{"list", "-v", "--", "x y"}},
		{"exec without --", r.shim, []string{"exec", "list", "-l", "inst1"}, []string{"list", "-l", "inst1"}},
		{"exec with --config", r.shim, []string{"--config", r.config, "exec", "--", "info"}, []string{"info"}},
		{"as xl", xl, []string{"list", "-v", "--help", "--", "x y"}, []string{"list", "-v", "--help", "--", "x y"}},
		{"as xl, no arguments", xl, nil, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(r.log)
			res := r.run(t, tc.bin, "stdin data\n", env, tc.args...)
			if res.code != 7 || res.stdout != "Name ID\n" || res.stderr != "warn\n" {
				t.Errorf("got exit %d, stdout %q, stderr %q; want 7, %q, %q", res.code, res.stdout, res.stderr, "Name ID\n", "warn\n")
			}
			calls := r.calls(t)
			if len(calls) != 1 {
				t.Fatalf("toolstack called %d times, want once", len(calls))
			}
			c := calls[0]
			if diff := cmp.Diff(append([]string{r.fake}, tc.want...), c.Argv); diff != "" {
				t.Errorf("argv (-want +got):\n%s", diff)
			}
			if c.Stdin != "stdin data\n" {
				t.Errorf("stdin %q", c.Stdin)
			}
			if c.Cwd != r.dir {
				t.Errorf("cwd %q, want %q", c.Cwd, r.dir)
			}
			wantEnv := append([]string{"PATH=/usr/bin:/bin", "USERDOWN_CONFIG=" + r.config, "FAKE_TOOLSTACK_LOG=" + r.log}, env...)
			if diff := cmp.Diff(wantEnv, c.Env); diff != "" {
				t.Errorf("environment (-want +got):\n%s", diff)
			}
		})
	}
}

const ganeti210 = `# this is autogenerated by Ganeti, please do not edit
#
kernel = '/boot/vmlinuz-3-xenU'
memory = 512
vcpus = 1
name = 'inst1.example.com'
vif = ['mac=aa:00:00:35:ff:02, bridge=xen-br0']
disk = ['phy:/dev/xenvg/disk0,xvda,w']
root = '/dev/xvda1 ro'
on_poweroff = 'destroy'
on_reboot = 'restart'
on_crash = 'restart'
`

// TestShimCreateRewrites checks that the config is rewritten before the
// toolstack reads it, wherever the file is on the command line, and that
// key=value overrides pass through untouched.
// Reference: design.md, "Shim": "Before create … CFG it rewrites CFG".
func TestShimCreateRewrites(t *testing.T) {
	want := strings.Replace(strings.Replace(ganeti210, "on_poweroff = 'destroy'", "on_poweroff = 'preserve'", 1),
		"on_crash = 'restart'", "on_crash = 'preserve'", 1) + "on_shutdown = 'preserve'\n"
	r := newRig(t)
	xl := r.linkAs(t, "xl")
	for _, tc := range []struct {
		name string
		bin  string
		args []string // CFG stands for the config path
	}{
		{"ganeti", xl, []string{"create", "CFG"}},
		{"paused", xl, []string{"create", "-p", "CFG"}},
		{"options after", xl, []string{"create", "CFG", "-p", "-q"}},
		{"-f", xl, []string{"create", "-c", "-f", "CFG", "memory=1024", "vcpus=2"}},
		{"--defconfig=", xl, []string{"-v", "create", "--defconfig=CFG", "name=x"}},
		{"overrides first", xl, []string{"create", "memory=1", "-d", "--", "CFG", "vcpus=3"}},
		{"exec --", r.shim, []string{"exec", "--", "create", "-e", "CFG"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(r.log)
			cfg := r.file(t, "inst1.example.com", ganeti210)
			args := make([]string, len(tc.args))
			for i, a := range tc.args {
				args[i] = strings.Replace(a, "CFG", cfg, 1)
			}
			res := r.run(t, tc.bin, "", []string{"FAKE_TOOLSTACK_CAPTURE=" + cfg}, args...)
			if res.code != 0 || res.stderr != "" {
				t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
			}
			calls := r.calls(t)
			if len(calls) != 1 || calls[0].Captured == nil {
				t.Fatalf("calls: %+v", calls)
			}
			if diff := cmp.Diff(want, *calls[0].Captured); diff != "" {
				t.Errorf("config as the toolstack read it (-want +got):\n%s", diff)
			}
			wantArgv := args
			if tc.bin == r.shim {
				wantArgv = args[2:]
			}
			if diff := cmp.Diff(append([]string{r.fake}, wantArgv...), calls[0].Argv); diff != "" {
				t.Errorf("argv (-want +got):\n%s", diff)
			}
		})
	}
}

// TestShimCreateBadConfig: a config that cannot be parsed is left alone,
// a warning is logged and the create still runs.
// Reference: design.md, "Shim": "if CFG cannot be parsed it logs, leaves
// CFG alone and lets the create go on: never block a start".
func TestShimCreateBadConfig(t *testing.T) {
	r := newRig(t)
	xl := r.linkAs(t, "xl")
	bad := "name = 'inst1'\r\non_poweroff = 'destroy'\r\n"
	cfg := r.file(t, "inst1", bad)
	res := r.run(t, xl, "", []string{"FAKE_TOOLSTACK_EXIT=3"}, "create", cfg)
	if res.code != 3 {
		t.Errorf("exit %d, want the toolstack's 3", res.code)
	}
	if !strings.Contains(res.stderr, "level=WARN") || !strings.Contains(res.stderr, cfg+":1:15: carriage return") {
		t.Errorf("stderr %q: want a warning naming the file, line and column", res.stderr)
	}
	if b, _ := os.ReadFile(cfg); string(b) != bad {
		t.Errorf("bad config modified: %q", b)
	}
	if calls := r.calls(t); len(calls) != 1 {
		t.Errorf("toolstack called %d times, want once", len(calls))
	}

	res = r.run(t, xl, "", nil, "create", filepath.Join(r.dir, "absent"))
	if res.code != 0 || !strings.Contains(res.stderr, "absent") {
		t.Errorf("missing config: exit %d, stderr %q; want the create to run and a warning", res.code, res.stderr)
	}
}

// TestShimOtherVerbsUntouched: only create rewrites; a destroy or a list
// leaves the configs alone and is passed straight through. (A shutdown
// first lists the domains to record its intent: see the shutdown tests
// of internal/shim and e2e.)
func TestShimOtherVerbsUntouched(t *testing.T) {
	r := newRig(t)
	xl := r.linkAs(t, "xl")
	cfg := r.file(t, "inst1", ganeti210)
	for _, args := range [][]string{{"destroy", "5"}, {"create", "--help", cfg}, {"list", cfg}} {
		res := r.run(t, xl, "", nil, args...)
		if res.code != 0 || res.stderr != "" {
			t.Errorf("%v: exit %d, stderr %q", args, res.code, res.stderr)
		}
	}
	if b, _ := os.ReadFile(cfg); string(b) != ganeti210 {
		t.Errorf("config changed by a verb other than create:\n%s", b)
	}
	if n := len(r.calls(t)); n != 3 {
		t.Errorf("toolstack called %d times, want 3", n)
	}
}

// TestShimConfigErrors: with `exec --` (an operator naming the toolstack)
// a command pointing at the shim itself is refused instead of looping, a
// broken configuration is a usage error and a missing toolstack exit 3.
// (Installed as xl, the shim falls back instead: see
// TestShimFallsBackToAWorkingToolstack.)
func TestShimConfigErrors(t *testing.T) {
	r := newRig(t)
	xl := r.linkAs(t, "xl")
	r.writeConfig(t, fmt.Sprintf("[xen]\ncommand = %q\n", xl))
	res := r.run(t, r.shim, "", nil, "exec", "--", "list")
	if res.code != exitUsage || !strings.Contains(res.stderr, "shim itself") {
		t.Errorf("exec self loop: exit %d, stderr %q", res.code, res.stderr)
	}

	r.writeConfig(t, "[xen]\ncomand = 'x'\n")
	res = r.run(t, r.shim, "", nil, "exec", "--", "list")
	if res.code != exitUsage || !strings.Contains(res.stderr, "xen.comand") {
		t.Errorf("bad config: exit %d, stderr %q", res.code, res.stderr)
	}
	if n := len(r.calls(t)); n != 0 {
		t.Errorf("toolstack called %d times, want none", n)
	}

	r.writeConfig(t, "[xen]\ncommand = '/nonexistent/xl'\n")
	res = r.run(t, r.shim, "", nil, "exec", "--", "list")
	if res.code != exitState || !strings.Contains(res.stderr, "/nonexistent/xl") {
		t.Errorf("missing toolstack: exit %d, stderr %q", res.code, res.stderr)
	}
}

// TestRewriteAndCheck runs the operator subcommands on a mix of files.
// Reference: design.md, "Binaries": "rewrite FILE..., check FILE...";
// exit codes "0 on success, 1 when some item failed, 2 on a usage or
// config error".
func TestRewriteAndCheck(t *testing.T) {
	r := newRig(t)
	old := r.file(t, "old", ganeti210)
	bad := r.file(t, "bad", "vif = ['a'] + ['b']\n")
	done := r.file(t, "done", "on_poweroff = 'preserve'\non_crash = 'preserve'\non_shutdown = 'preserve'\n")

	res := r.run(t, r.shim, "", nil, "check", old, done)
	if res.code != exitFailed || res.stdout != old+": missing on_poweroff=preserve, on_crash=preserve, on_shutdown=preserve\n"+done+": ok\n" {
		t.Errorf("check before: exit %d, stdout %q", res.code, res.stdout)
	}

	res = r.run(t, r.shim, "", nil, "rewrite", old, bad, done)
	if res.code != exitFailed {
		t.Errorf("rewrite: exit %d, want 1 (one file failed)", res.code)
	}
	if res.stdout != old+": rewritten\n"+done+": unchanged\n" {
		t.Errorf("rewrite stdout %q", res.stdout)
	}
	if !strings.Contains(res.stderr, bad+":1:13:") {
		t.Errorf("rewrite stderr %q: want the bad file's line and column", res.stderr)
	}

	res = r.run(t, r.shim, "", nil, "--json", "check", old, bad)
	var got []fileResult
	if err := json.Unmarshal([]byte(res.stdout), &got); err != nil {
		t.Fatalf("check --json: %v\n%s", err, res.stdout)
	}
	want := []fileResult{{File: old, Status: "ok"}, {File: bad, Status: "error", Error: bad + ":1:13: unexpected '+': this looks like Python, which Xen's config grammar does not accept"}}
	if diff := cmp.Diff(want, got); diff != "" || res.code != exitFailed {
		t.Errorf("check --json exit %d (-want +got):\n%s", res.code, diff)
	}

	res = r.run(t, r.shim, "", nil, "check", old)
	if res.code != exitOK || res.stdout != old+": ok\n" {
		t.Errorf("check after: exit %d, stdout %q", res.code, res.stdout)
	}

	// [actions] with an empty value leaves that key alone.
	r.writeConfig(t, "[actions]\non_shutdown = ''\non_crash = 'coredump-destroy'\n")
	res = r.run(t, r.shim, "", nil, "rewrite", old)
	b, _ := os.ReadFile(old)
	if res.code != exitOK || !strings.Contains(string(b), "on_crash = 'coredump-destroy'") || strings.Count(string(b), "on_shutdown") != 1 {
		t.Errorf("rewrite with custom actions: exit %d\n%s", res.code, b)
	}

	res = r.run(t, r.shim, "", nil, "rewrite")
	if res.code != exitUsage {
		t.Errorf("rewrite without files: exit %d, want 2", res.code)
	}
	res = r.run(t, r.shim, "", nil, "--config", filepath.Join(r.dir, "nope.toml"), "check", old)
	if res.code != exitUsage || !strings.Contains(res.stderr, "nope.toml") {
		t.Errorf("missing --config: exit %d, stderr %q", res.code, res.stderr)
	}
	res = r.run(t, r.shim, "", nil, "--help")
	if res.code != exitOK || !strings.Contains(res.stdout, "exec") || !strings.Contains(res.stdout, "USERDOWN_CONFIG") {
		t.Errorf("--help: exit %d, stdout %q", res.code, res.stdout)
	}
}
