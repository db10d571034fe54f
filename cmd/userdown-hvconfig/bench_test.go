package main

import (
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"ganeti-userdown/internal/testbin"
)

// BenchmarkShimOverhead measures what the shim adds to a toolstack call:
// each iteration runs the fake toolstack directly, `userdown-hvconfig
// exec -- list`, and the shim installed as xl (`xl list`); it reports the
// median direct time and the added median wall time of each shim form.
// Reference: design.md, "Shim": "adding well under 5 ms".
func BenchmarkShimOverhead(b *testing.B) {
	r := &rig{dir: b.TempDir()}
	r.shim = testbin.Build(b, "ganeti-userdown/cmd/userdown-hvconfig")
	r.fake = testbin.Build(b, "ganeti-userdown/cmd/userdown-hvconfig/testdata/faketoolstack")
	r.config = r.dir + "/userdown.toml"
	if err := os.WriteFile(r.config, []byte("[xen]\ncommand = \""+r.fake+"\"\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	env := []string{"PATH=/usr/bin:/bin", "USERDOWN_CONFIG=" + r.config}
	runOnce := func(bin string, args ...string) time.Duration {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		start := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatalf("%s: %v", bin, err)
		}
		return time.Since(start)
	}
	xl := r.dir + "/xl"
	if err := os.Symlink(r.shim, xl); err != nil {
		b.Fatal(err)
	}
	var direct, shim, asXL []time.Duration
	for b.Loop() {
		direct = append(direct, runOnce(r.fake, "list"))
		shim = append(shim, runOnce(r.shim, "exec", "--", "list"))
		asXL = append(asXL, runOnce(xl, "list"))
	}
	md, ms, mx := median(direct), median(shim), median(asXL)
	b.ReportMetric(float64(md.Microseconds()), "direct-µs")
	b.ReportMetric(float64((ms - md).Microseconds()), "added-µs")
	b.ReportMetric(float64((mx - md).Microseconds()), "added-as-xl-µs")
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}
