package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"ganeti-userdown/internal/testbin"
)

// node is a directory holding the shim as xl, the full shim beside it (as
// userdown-hvconfig, which the shim hands every other call to), a fake
// toolstack and a configuration naming it.
type node struct {
	dir, xl, fake, config, log string
}

func newNode(t *testing.T) *node {
	t.Helper()
	n := &node{dir: t.TempDir()}
	bin := filepath.Join(n.dir, "sbin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, pkg := range map[string]string{"userdown-shim": "ganeti-userdown/cmd/userdown-shim", "userdown-hvconfig": "ganeti-userdown/cmd/userdown-hvconfig"} {
		b, err := os.ReadFile(testbin.Build(t, pkg))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bin, name), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	n.xl = filepath.Join(bin, "xl")
	if err := os.Symlink("userdown-shim", n.xl); err != nil {
		t.Fatal(err)
	}
	n.fake = testbin.Build(t, "ganeti-userdown/cmd/userdown-hvconfig/testdata/faketoolstack")
	n.log = filepath.Join(n.dir, "calls.log")
	n.config = filepath.Join(n.dir, "userdown.toml")
	n.writeConfig(t, fmt.Sprintf("[xen]\ncommand = %q # the fake\n", n.fake))
	return n
}

func (n *node) writeConfig(t *testing.T, s string) {
	t.Helper()
	if err := os.WriteFile(n.config, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (n *node) run(t *testing.T, bin string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "USERDOWN_CONFIG=" + n.config, "FAKE_TOOLSTACK_LOG=" + n.log}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), stderr.String()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, stderr.String()
}

// argvs returns the argument vectors the fake toolstack was called with.
func (n *node) argvs(t *testing.T) [][]string {
	t.Helper()
	b, err := os.ReadFile(n.log)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var c struct {
			Argv []string `json:"argv"`
		}
		if err := json.Unmarshal([]byte(l), &c); err != nil {
			t.Fatal(err)
		}
		out = append(out, c.Argv)
	}
	return out
}

// TestShimPassThroughAndHandOver checks both paths of the installed shim:
// a pass-through verb execs [xen] command itself with the same arguments;
// a create (something to prepare) goes through the full shim, which
// rewrites the domain config; either way the toolstack gets argv[0] =
// the command and the caller's arguments.
// Reference: doc/design.md, "Shim"; issue 11, section 6.
func TestShimPassThroughAndHandOver(t *testing.T) {
	n := newNode(t)
	if code, stderr := n.run(t, n.xl, "list", "-l", "web1"); code != 0 || stderr != "" {
		t.Fatalf("xl list: exit %d, stderr %q", code, stderr)
	}
	cfg := filepath.Join(n.dir, "web1.cfg")
	if err := os.WriteFile(cfg, []byte("name = 'web1'\non_poweroff = 'destroy'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, stderr := n.run(t, n.xl, "create", cfg); code != 0 {
		t.Fatalf("xl create: exit %d, stderr %q", code, stderr)
	}
	if b, _ := os.ReadFile(cfg); !strings.Contains(string(b), "on_poweroff = 'preserve'") {
		t.Errorf("create went past the full shim without the rewrite:\n%s", b)
	}
	got := n.argvs(t)
	want := [][]string{{n.fake, "list", "-l", "web1"}, {n.fake, "create", cfg}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("toolstack calls %q, want %q", got, want)
	}
}

// TestShimHandsOverWhatItCannotDecide checks that a configuration the
// fast path does not read (outside the plain subset, or refused) and a
// command it cannot run go to the full shim, which reads the first and
// says why it passes over the others.
// Reference: issue 14, points 1 and 2.
func TestShimHandsOverWhatItCannotDecide(t *testing.T) {
	n := newNode(t)
	n.writeConfig(t, "[xen]\ncommand = \""+strings.ReplaceAll(n.fake, "/", `\u002f`)+"\"\n")
	if code, stderr := n.run(t, n.xl, "list"); code != 0 || len(n.argvs(t)) != 1 {
		t.Errorf("escaped command: exit %d, stderr %q, calls %q: the full shim should have read it", code, stderr, n.argvs(t))
	}
	n.writeConfig(t, "[xen]\ncommand = \"/nonexistent/xl\"\n")
	if _, stderr := n.run(t, n.xl, "list"); !strings.Contains(stderr, "/nonexistent/xl does not exist") {
		t.Errorf("missing command: stderr %q, want the full shim's error", stderr)
	}
	if code, stderr := n.run(t, filepath.Join(n.dir, "sbin/userdown-shim"), "list"); code != 2 || !strings.Contains(stderr, "xl or xm") {
		t.Errorf("under its own name: exit %d, stderr %q", code, stderr)
	}
}

// TestShimNeverRunsItself checks that a [xen] command naming the shim
// (the built-in default /usr/sbin/xl once the package is installed) does
// not make the shim and the full shim exec each other for ever: the full
// shim passes over it and runs the distribution's toolstack.
// Reference: issue 14, point 1.
func TestShimNeverRunsItself(t *testing.T) {
	const distributionXL = "/usr/lib/xen-4.17/bin/xl"
	if _, err := os.Stat(distributionXL); err != nil {
		t.Fatalf("%s: %v (apt-get install -y xen-utils-4.17)", distributionXL, err)
	}
	n := newNode(t)
	n.writeConfig(t, fmt.Sprintf("[xen]\ncommand = %q\n", n.xl))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, n.xl, "list")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "USERDOWN_CONFIG=" + n.config}
	out, _ := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("xl list still running after 20s: the shims exec each other")
	}
	if !strings.Contains(string(out), "cannot init xl context") || !strings.Contains(string(out), "is the shim") {
		t.Errorf("output %q: want the distribution's xl run and the shim named as the reason", out)
	}
}

// TestCreateNeverBlocked checks that a domain config the shim must not
// rewrite (a FIFO, a device, a file over the bound) delays no start: the
// toolstack runs at once with the command line untouched, and the shim
// says why it left the file alone.
// Reference: issue 14, point 4; doc/design.md, "Shim".
func TestCreateNeverBlocked(t *testing.T) {
	n := newNode(t)
	fifo := filepath.Join(n.dir, "fifo.cfg")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(n.dir, "big.cfg")
	if err := os.WriteFile(big, bytes.Repeat([]byte("\n"), 2<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	var want [][]string
	for _, cfg := range []string{fifo, "/dev/zero", big} {
		start := time.Now()
		code, stderr := n.run(t, n.xl, "create", cfg)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("create %s took %v", cfg, d)
		}
		if code != 0 || !strings.Contains(stderr, "not rewritten") {
			t.Errorf("create %s: exit %d, stderr %q; want the toolstack run and a warning", cfg, code, stderr)
		}
		want = append(want, []string{n.fake, "create", cfg})
	}
	if got := n.argvs(t); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("toolstack calls %q, want %q", got, want)
	}
}
