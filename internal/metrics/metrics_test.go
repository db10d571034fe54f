package metrics

import (
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"ganeti-userdown/internal/state"
)

func TestFormatLineByLine(t *testing.T) {
	got, err := Format([]Family{
		{Name: "a_total", Help: "Counts a.\nSecond \\ line.", Type: Counter, Samples: []Sample{
			{Labels: []Label{{"source", "x"}, {"kind", `q"uo\te` + "\n"}}, Value: 3},
			{Value: 0.5},
		}},
		{Name: "b_seconds", Help: "", Type: Histogram, Samples: []Sample{
			{Suffix: "_bucket", Labels: []Label{{"le", "+Inf"}}, Value: 2},
			{Suffix: "_sum", Value: 1e-7},
			{Suffix: "_count", Value: 2},
		}},
		{Name: "c", Help: "g", Type: Gauge, Samples: []Sample{{Value: math.Inf(1)}, {Value: math.Inf(-1)}, {Value: math.NaN()}, {Value: 1764072000.25}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`# HELP a_total Counts a.\nSecond \\ line.`,
		`# TYPE a_total counter`,
		`a_total{source="x",kind="q\"uo\\te\n"} 3`,
		`a_total 0.5`,
		`# HELP b_seconds `,
		`# TYPE b_seconds histogram`,
		`b_seconds_bucket{le="+Inf"} 2`,
		`b_seconds_sum 1e-07`,
		`b_seconds_count 2`,
		`# HELP c g`,
		`# TYPE c gauge`,
		`c +Inf`,
		`c -Inf`,
		`c NaN`,
		`c 1.76407200025e+09`,
		``,
	}
	if d := cmp.Diff(want, strings.Split(string(got), "\n")); d != "" {
		t.Errorf("exposition (-want +got):\n%s", d)
	}
}

func TestFormatRefusesBadNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    []Family
	}{
		{"metric with a dash", []Family{{Name: "a-b", Type: Counter}}},
		{"metric starting with a digit", []Family{{Name: "1a", Type: Counter}}},
		{"reserved metric", []Family{{Name: "__a", Type: Counter}}},
		{"label with a dot", []Family{{Name: "a", Type: Counter, Samples: []Sample{{Labels: []Label{{"a.b", "x"}}}}}}},
		{"reserved label", []Family{{Name: "a", Type: Counter, Samples: []Sample{{Labels: []Label{{"__name__", "x"}}}}}}},
		{"unknown type", []Family{{Name: "a", Type: "summary"}}},
		{"family twice", []Family{{Name: "a", Type: Counter}, {Name: "a", Type: Counter}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if b, err := Format(tc.f); err == nil {
				t.Errorf("no error; wrote %q", b)
			}
		})
	}
}

// sampleLine is what node_exporter's parser accepts for one sample without
// a timestamp: name, optional labels, one value.
var sampleLine = regexp.MustCompile(`^(ganeti_userdown_[a-z_]+)(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? (\S+)$`)

func TestTotalsFamilies(t *testing.T) {
	tot := NewTotals()
	start := time.Unix(1764072000, 0)
	err := tot.Add(Run{
		Source: "userdown-watchd", Start: start, Duration: 1500 * time.Millisecond,
		Decisions: map[string]int{"running": 5, "mark-down": 2, "dom0": 1},
		MarkDowns: 2, Destroys: 1, CrashRestarts: 1,
		Failures: map[string]int{"start": 1},
		Delays:   []time.Duration{30 * time.Millisecond, 700 * time.Millisecond, 10 * time.Minute},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tot.Add(Run{Source: "userdown-detect", Start: start.Add(time.Minute), Duration: time.Second, MarkDowns: 1}); err != nil {
		t.Fatal(err)
	}
	b, err := Format(tot.Families())
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	values := map[string]string{}
	types := map[string]string{}
	for _, l := range lines {
		if f, ok := strings.CutPrefix(l, "# TYPE "); ok {
			p := strings.Fields(f)
			types[p[0]] = p[1]
			continue
		}
		if strings.HasPrefix(l, "# HELP ") {
			continue
		}
		m := sampleLine.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("not a sample line without timestamp: %q", l)
			continue
		}
		values[m[1]+m[2]] = m[4]
	}
	// Prometheus naming: counters end in _total, seconds in _seconds.
	for name, typ := range types {
		if typ == "counter" && !strings.HasSuffix(name, "_total") {
			t.Errorf("counter %s does not end in _total", name)
		}
		if strings.Contains(name, "duration") || strings.Contains(name, "timestamp") {
			if !strings.HasSuffix(name, "_seconds") {
				t.Errorf("%s is in seconds but does not say so", name)
			}
		}
	}
	for k, want := range map[string]string{
		`ganeti_userdown_runs_total{source="userdown-watchd"}`:                           "1",
		`ganeti_userdown_decisions_total{source="userdown-watchd",decision="mark-down"}`: "2",
		`ganeti_userdown_decisions_total{source="userdown-watchd",decision="wait"}`:      "0",
		`ganeti_userdown_decisions_total{source="userdown-detect",decision="running"}`:   "0",
		`ganeti_userdown_mark_downs_total{source="userdown-watchd"}`:                     "2",
		`ganeti_userdown_mark_downs_total{source="userdown-detect"}`:                     "1",
		`ganeti_userdown_destroys_total{source="userdown-watchd"}`:                       "1",
		`ganeti_userdown_crash_restarts_total{source="userdown-watchd"}`:                 "1",
		`ganeti_userdown_failures_total{source="userdown-watchd",kind="start"}`:          "1",
		`ganeti_userdown_failures_total{source="userdown-watchd",kind="unreadable"}`:     "0",
		`ganeti_userdown_last_run_timestamp_seconds{source="userdown-detect"}`:           "1.76407206e+09",
		`ganeti_userdown_last_run_duration_seconds{source="userdown-watchd"}`:            "1.5",
		`ganeti_userdown_event_to_mark_down_seconds_bucket{le="0.05"}`:                   "1",
		`ganeti_userdown_event_to_mark_down_seconds_bucket{le="0.5"}`:                    "1",
		`ganeti_userdown_event_to_mark_down_seconds_bucket{le="1"}`:                      "2",
		`ganeti_userdown_event_to_mark_down_seconds_bucket{le="300"}`:                    "2",
		`ganeti_userdown_event_to_mark_down_seconds_bucket{le="+Inf"}`:                   "3",
		`ganeti_userdown_event_to_mark_down_seconds_sum`:                                 "600.73",
		`ganeti_userdown_event_to_mark_down_seconds_count`:                               "3",
	} {
		if got := values[k]; got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if err := tot.Add(Run{Source: "x", Decisions: map[string]int{"bogus": 1}}); err == nil {
		t.Error("an unknown decision kind was counted")
	}
}

// Counters across processes: each run reads, adds and writes back, under
// the run lock in real use (here: one after another, as the lock makes
// them), through the state dir's records.
func TestRecorderAddsUpAcrossProcessesAndWritesAtomically(t *testing.T) {
	stateDir := filepath.Join(t.TempDir(), "state")
	textDir := filepath.Join(t.TempDir(), "node-exporter")
	textfile := filepath.Join(textDir, "ganeti-userdown.prom")
	// A new store per run, as each watcher hook process opens its own.
	recorder := func() Recorder { return Recorder{Store: state.Open(stateDir), Textfile: textfile} }
	if err := recorder().Record(Run{Source: "userdown-detect", MarkDowns: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(textfile); !os.IsNotExist(err) {
		t.Errorf("textfile written although its directory does not exist: %v", err)
	}
	if err := os.Mkdir(textDir, 0o755); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex // stands for the run lock
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			if err := recorder().Record(Run{Source: "userdown-detect", MarkDowns: 1}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	b, err := os.ReadFile(textfile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "\nganeti_userdown_mark_downs_total{source=\"userdown-detect\"} 11\n") {
		t.Errorf("textfile does not count 11 mark-downs:\n%s", b)
	}
	if names := dirNames(t, textDir); len(names) != 1 || names[0] != "ganeti-userdown.prom" {
		t.Errorf("textfile directory holds %v: temporary files left", names)
	}
	// Corrupt totals start over, and say so.
	if err := os.WriteFile(filepath.Join(stateDir, TotalsRecord), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := recorder().Record(Run{Source: "userdown-detect", MarkDowns: 1}); err == nil || !strings.Contains(err.Error(), "counting from zero") {
		t.Errorf("corrupt totals: err = %v", err)
	}
	b, _ = os.ReadFile(textfile)
	if !strings.Contains(string(b), "ganeti_userdown_mark_downs_total{source=\"userdown-detect\"} 1\n") {
		t.Errorf("after corrupt totals:\n%s", b)
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}
