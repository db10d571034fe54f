// Package testbin builds the project's binaries and fakes for end-to-end
// tests, once per test process, so the tests run the same executables a
// node runs.
package testbin

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	mu    sync.Mutex
	dir   string
	built = map[string]string{}
)

// Build compiles the main package at pkg (an import path such as
// "ganeti-userdown/cmd/userdown-detect" or "ganeti-userdown/testdata/xensim")
// into a directory shared by the whole test process and returns the path of
// the executable, named after the last element of pkg. It fails the test
// when the build fails.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	return BuildAs(t, pkg, filepath.Base(pkg))
}

// BuildAs is Build with a chosen executable name (the simulator behaves as
// xl or xm by the name it is called under).
func BuildAs(t testing.TB, pkg, name string) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	key := pkg + "\x00" + name
	if p, ok := built[key]; ok {
		return p
	}
	if dir == "" {
		d, err := os.MkdirTemp("", "userdown-testbin-")
		if err != nil {
			t.Fatalf("testbin: %v", err)
		}
		dir = d
	}
	sub := filepath.Join(dir, strings.NewReplacer("/", "_", ".", "_").Replace(pkg))
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatalf("testbin: %v", err)
	}
	out := filepath.Join(sub, name)
	cmd := exec.Command("go", "build", "-o", out, pkg)
	// Linked as `make build` links them: static, no libc to load.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("testbin: go build %s: %v\n%s", pkg, err, b)
	}
	built[key] = out
	return out
}

// Main is the TestMain of a package whose tests Build binaries: it runs
// the tests, removes the build directory and exits with their status.
func Main(m *testing.M) {
	code := m.Run()
	Cleanup()
	os.Exit(code)
}

// Cleanup removes the build directory; call it from TestMain after m.Run
// (Main does).
func Cleanup() {
	mu.Lock()
	defer mu.Unlock()
	if dir != "" {
		os.RemoveAll(dir)
		dir = ""
		built = map[string]string{}
	}
}

// ModuleRoot returns the directory holding the module's go.mod, found
// upwards from the test's working directory.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("testbin: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("testbin: no go.mod above the test directory")
		}
		dir = parent
	}
}

// Captures returns the path of elem inside the real Ganeti 3.0.2 captures
// kept in testdata/ganeti-3.0.2, failing the test with a clear message
// when it is missing.
func Captures(t testing.TB, elem ...string) string {
	t.Helper()
	p := filepath.Join(append([]string{ModuleRoot(t), "testdata", "ganeti-3.0.2"}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("the real Ganeti 3.0.2 captures are missing: %v\n"+
			"they belong in <module root>/testdata/ganeti-3.0.2", err)
	}
	return p
}
