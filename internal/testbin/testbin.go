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
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("testbin: go build %s: %v\n%s", pkg, err, b)
	}
	built[key] = out
	return out
}

// Cleanup removes the build directory; call it from TestMain after m.Run.
func Cleanup() {
	mu.Lock()
	defer mu.Unlock()
	if dir != "" {
		os.RemoveAll(dir)
		dir = ""
		built = map[string]string{}
	}
}
