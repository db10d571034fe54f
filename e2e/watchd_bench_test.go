package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"ganeti-userdown/testdata/ganetifake"
)

// The figures of the event daemon (doc/design.md, "Event daemon"), with
// `make bench`. Each benchmark measures a fixed number of samples,
// whatever b.N, and reports median and p99 as custom metrics.

// percentile returns the p-th percentile (0..100) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}

// reportLatency reports the median and p99 of took, and fails the
// benchmark when p99 is above target.
func reportLatency(b *testing.B, took []time.Duration, unit string, target time.Duration) {
	b.Helper()
	b.ReportMetric(percentile(took, 50).Seconds(), "median-s")
	b.ReportMetric(percentile(took, 99).Seconds(), "p99-s")
	b.ReportMetric(float64(len(took)), unit)
	if p99 := percentile(took, 99); p99 > target {
		b.Errorf("p99 %s above the %s target", p99, target)
	}
}

// upAgain records the instance admin up again and creates its domain, as
// an operator starting it would, so the next sample can power it off.
func (d *daemonNode) upAgain(name string) {
	d.t.Helper()
	if err := d.rapi.Update(func(st *ganetifake.State) error {
		for i := range st.Instances {
			if st.Instances[i].Name == name {
				st.Instances[i].AdminState = "up"
			}
		}
		return nil
	}); err != nil {
		d.t.Fatal(err)
	}
	d.xl("create", filepath.Join(d.xenDir, name))
}

// BenchmarkDaemonPoweroffToMarkDown: from a user's poweroff to its
// instance marked down in Ganeti (the job finished) and the domain gone,
// over 200 poweroffs, the daemon acting on xenstored's events alone.
// Target: p99 at most 2 s (the watcher hook: 0 to 300 s).
func BenchmarkDaemonPoweroffToMarkDown(b *testing.B) {
	const instances = 10
	insts := upInstances(instances)
	d := newDaemonNode(b, insts, daemonOptions{})
	d.startAll(insts)
	d.startDaemon()
	samples := max(200, b.N)
	var took []time.Duration
	b.ResetTimer()
	for i := 0; i < samples; i++ {
		name := insts[i%instances].name
		if i >= instances {
			d.upAgain(name)
		}
		start := time.Now()
		d.xl("sim", "poweroff", name)
		d.waitFor(name+" marked down", func() bool {
			if d.instanceState(name) != "down" {
				return false
			}
			_, there := d.domain(name)
			return !there
		})
		took = append(took, time.Since(start))
	}
	b.StopTimer()
	reportLatency(b, took, "poweroffs", 2*time.Second)
}

// BenchmarkDaemonCrashToRunning: from a guest's crash to its instance
// running again (dumped, destroyed, started through Ganeti).
// Target: p99 at most 10 s.
func BenchmarkDaemonCrashToRunning(b *testing.B) {
	dumps := b.TempDir()
	d := newDaemonNode(b, []instance{{name: "db1.example.com", admin: "up"}},
		daemonOptions{extra: "[crash]\ndump_dir = \"" + dumps + "\"\nkeep = 1\n"})
	d.start("db1.example.com")
	d.startDaemon()
	samples := max(50, b.N)
	var took []time.Duration
	b.ResetTimer()
	for i := 0; i < samples; i++ {
		before, _ := d.domain("db1.example.com")
		start := time.Now()
		d.xl("sim", "crash", "db1.example.com")
		d.waitFor("db1 running again", func() bool {
			dom, ok := d.domain("db1.example.com")
			return ok && dom.State.Alive() && dom.ID != before.ID
		})
		took = append(took, time.Since(start))
	}
	b.StopTimer()
	reportLatency(b, took, "crashes", 10*time.Second)
}

// procStat reads the daemon's resident set (kB) and its threads' context
// switches (each one a wakeup or a preemption) from /proc.
func procStat(b *testing.B, pid int) (rssKB, switches int) {
	b.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			rssKB, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, t := range tasks {
		s, err := os.ReadFile(t)
		if err != nil {
			continue // a thread that just ended
		}
		for _, l := range strings.Split(string(s), "\n") {
			for _, k := range []string{"voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:"} {
				if v, ok := strings.CutPrefix(l, k); ok {
					n, _ := strconv.Atoi(strings.TrimSpace(v))
					switches += n
				}
			}
		}
	}
	return rssKB, switches
}

// BenchmarkDaemonIdleWakeups: context switches of an idle daemon (no
// events, rescan far away), per minute, measured over 30 s.
func BenchmarkDaemonIdleWakeups(b *testing.B) {
	d := newDaemonNode(b, []instance{{name: "web1.example.com", admin: "up"}}, daemonOptions{})
	d.start("web1.example.com")
	d.startDaemon()
	time.Sleep(2 * time.Second) // past the start's scans and the GC after them
	pid := d.daemon.Process.Pid
	_, s0 := procStat(b, pid)
	const window = 30 * time.Second
	b.ResetTimer()
	time.Sleep(window)
	b.StopTimer()
	_, s1 := procStat(b, pid)
	b.ReportMetric(float64(s1-s0)*float64(time.Minute)/float64(window), "wakeups/min")
}

// BenchmarkDaemonRSS10000Events: the daemon's resident memory at start,
// after 1,000 and after 10,000 @releaseDomain events (fired by the
// xenstored simulator on SIGUSR1, paced so none is lost to signal
// coalescing). Target: at most 20 MB, and flat.
func BenchmarkDaemonRSS10000Events(b *testing.B) {
	d := newDaemonNode(b, []instance{{name: "web1.example.com", admin: "up"}, {name: "db1.example.com", admin: "up"}}, daemonOptions{})
	d.start("web1.example.com")
	d.start("db1.example.com")
	d.startDaemon()
	pid := d.daemon.Process.Pid
	rss0, _ := procStat(b, pid)
	var rss1k int
	b.ResetTimer()
	for i := 1; i <= 10000; i++ {
		if err := d.xs.Process.Signal(syscall.SIGUSR1); err != nil {
			b.Fatal(err)
		}
		time.Sleep(500 * time.Microsecond)
		if i == 1000 {
			time.Sleep(200 * time.Millisecond)
			rss1k, _ = procStat(b, pid)
		}
	}
	time.Sleep(time.Second)
	b.StopTimer()
	rss10k, _ := procStat(b, pid)
	b.ReportMetric(float64(rss0)/1024, "rss-start-MB")
	b.ReportMetric(float64(rss1k)/1024, "rss-1k-MB")
	b.ReportMetric(float64(rss10k)/1024, "rss-10k-MB")
	b.ReportMetric(float64(strings.Count(d.log(), "trigger=event")), "event-runs")
	if rss10k > 20*1024 {
		b.Errorf("RSS %d kB after 10,000 events, above the 20 MB target", rss10k)
	}
}
