package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"ganeti-userdown/internal/testbin"
)

func TestMain(m *testing.M) { testbin.Main(m) }

// BenchmarkShimRatio measures the shim's hot path as a ratio to its floor:
// each iteration runs, one after the other, a static Go program that does
// nothing but exec /bin/true with its arguments and environment (runtime
// start plus one exec: testdata/floor) and the shim installed as xl
// running `xl list` with [xen] command = "/bin/true" (the root-trust
// checks included when run as root). It reports the ratio of the median
// wall times (shim/floor, target: at most 1.15) and, for comparison, the
// shim against a floor without package os (testdata/barefloor, which
// cannot pass the arguments on) and the full shim, userdown-hvconfig
// called as xl, against the floor.
// Reference: issue 11, section 6; doc/design.md, "Shim".
func BenchmarkShimRatio(b *testing.B) {
	dir := b.TempDir()
	floor := testbin.Build(b, "ganeti-userdown/cmd/userdown-shim/testdata/floor")
	bare := testbin.Build(b, "ganeti-userdown/cmd/userdown-shim/testdata/barefloor")
	xl := filepath.Join(dir, "slim", "xl")
	fullXL := filepath.Join(dir, "full", "xl")
	for p, pkg := range map[string]string{xl: "ganeti-userdown/cmd/userdown-shim", fullXL: "ganeti-userdown/cmd/userdown-hvconfig"} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.Symlink(testbin.Build(b, pkg), p); err != nil {
			b.Fatal(err)
		}
	}
	config := filepath.Join(dir, "userdown.toml")
	if err := os.WriteFile(config, []byte("[xen]\ncommand = \"/bin/true\"\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	env := []string{"PATH=/usr/bin:/bin", "USERDOWN_CONFIG=" + config}
	for _, bin := range []string{floor, bare, xl, fullXL} {
		// Once with the output checked (nothing to say); timed below with
		// no pipes to read, which would add the same to both sides.
		cmd := exec.Command(bin, "list")
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
			b.Fatalf("%s: %v %s", bin, err, out)
		}
	}
	runOnce := func(bin string, args ...string) time.Duration {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		start := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatalf("%s: %v", bin, err)
		}
		return time.Since(start)
	}
	var floors, bares, shims, fulls []time.Duration
	for b.Loop() {
		floors = append(floors, runOnce(floor, "list"))
		bares = append(bares, runOnce(bare, "list"))
		shims = append(shims, runOnce(xl, "list"))
		fulls = append(fulls, runOnce(fullXL, "list"))
	}
	mf := median(floors)
	b.ReportMetric(float64(mf.Microseconds()), "floor-µs")
	b.ReportMetric(float64(median(shims))/float64(mf), "shim/floor")
	b.ReportMetric(float64(median(shims))/float64(median(bares)), "shim/barefloor")
	b.ReportMetric(float64(median(fulls))/float64(mf), "full-shim/floor")
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}
