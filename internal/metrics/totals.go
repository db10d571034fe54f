package metrics

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"time"

	"ganeti-userdown/internal/atomicfile"
)

// Prefix starts every metric name.
const Prefix = "ganeti_userdown_"

// DecisionKinds are the decisions counted (detect's kinds); FailureKinds
// the failures. Both are fixed sets, so the totals never grow.
var (
	DecisionKinds = []string{"running", "mark-down", "destroy", "wait", "host-initiated", "not-ganeti", "dom0"}
	FailureKinds  = []string{"unreadable", "config", "mark-down", "destroy", "dump", "start"}
)

// DelayBuckets are the upper bounds, in seconds, of the event to
// finished mark-down histogram.
var DelayBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300}

// Run is what one run of one program did: the input of Totals.Add.
type Run struct {
	// Source is the program: userdown-watchd, userdown-detect,
	// userdown-destroy.
	Source   string
	Start    time.Time
	Duration time.Duration
	// Decisions counts the run's decisions by kind.
	Decisions map[string]int
	// MarkDowns, Destroys and CrashRestarts count what succeeded.
	MarkDowns, Destroys, CrashRestarts int
	// Failures counts the failed items by kind (FailureKinds).
	Failures map[string]int
	// Delays are, for each finished mark-down of an event-triggered run,
	// the time from the event to the end of the mark-down.
	Delays []time.Duration
}

// SourceTotals are the totals of one program.
type SourceTotals struct {
	Runs          float64            `json:"runs"`
	Decisions     map[string]float64 `json:"decisions"`
	MarkDowns     float64            `json:"mark_downs"`
	Destroys      float64            `json:"destroys"`
	CrashRestarts float64            `json:"crash_restarts"`
	Failures      map[string]float64 `json:"failures"`
	// LastRun is the Unix time the last run started; LastDuration how
	// long it took, in seconds.
	LastRun      float64 `json:"last_run"`
	LastDuration float64 `json:"last_duration"`
}

// Buckets is a histogram: Counts[i] counts the observations up to
// Bounds[i] (not cumulative), the last entry those above every bound.
type Buckets struct {
	Bounds []float64 `json:"bounds"`
	Counts []uint64  `json:"counts"`
	Sum    float64   `json:"sum"`
	Count  uint64    `json:"count"`
}

// Totals are every counter since the state directory was created: read,
// added to and written back by each run under the run lock, so that the
// separate processes of the watcher hook and the daemon add up.
type Totals struct {
	Sources map[string]*SourceTotals `json:"sources"`
	Delay   Buckets                  `json:"event_to_mark_down"`
}

// NewTotals returns empty totals.
func NewTotals() Totals {
	return Totals{Sources: map[string]*SourceTotals{}, Delay: newBuckets()}
}

func newBuckets() Buckets {
	return Buckets{Bounds: append([]float64(nil), DelayBuckets...), Counts: make([]uint64, len(DelayBuckets)+1)}
}

// Add counts run r in t. Kinds outside DecisionKinds and FailureKinds are
// refused (they would make the totals grow without bound).
func (t *Totals) Add(r Run) error {
	if r.Source == "" {
		return errors.New("metrics: run without a source")
	}
	for k := range r.Decisions {
		if !contains(DecisionKinds, k) {
			return fmt.Errorf("metrics: unknown decision kind %q", k)
		}
	}
	for k := range r.Failures {
		if !contains(FailureKinds, k) {
			return fmt.Errorf("metrics: unknown failure kind %q", k)
		}
	}
	if t.Sources == nil {
		t.Sources = map[string]*SourceTotals{}
	}
	s := t.Sources[r.Source]
	if s == nil {
		s = &SourceTotals{}
		t.Sources[r.Source] = s
	}
	if s.Decisions == nil {
		s.Decisions = map[string]float64{}
	}
	if s.Failures == nil {
		s.Failures = map[string]float64{}
	}
	s.Runs++
	for k, n := range r.Decisions {
		s.Decisions[k] += float64(n)
	}
	for k, n := range r.Failures {
		s.Failures[k] += float64(n)
	}
	s.MarkDowns += float64(r.MarkDowns)
	s.Destroys += float64(r.Destroys)
	s.CrashRestarts += float64(r.CrashRestarts)
	s.LastRun = float64(r.Start.UnixNano()) / 1e9
	s.LastDuration = r.Duration.Seconds()
	if len(t.Delay.Bounds) != len(DelayBuckets) || len(t.Delay.Counts) != len(DelayBuckets)+1 {
		t.Delay = newBuckets()
	}
	for _, d := range r.Delays {
		v := d.Seconds()
		i := sort.SearchFloat64s(t.Delay.Bounds, v) // first bound >= v
		t.Delay.Counts[i]++
		t.Delay.Sum += v
		t.Delay.Count++
	}
	return nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// Families returns the totals as metric families, in a fixed order, every
// known kind present (0 until it happens) for each source seen.
func (t Totals) Families() []Family {
	names := make([]string, 0, len(t.Sources))
	for n := range t.Sources {
		names = append(names, n)
	}
	sort.Strings(names)
	src := func(n string) []Label { return []Label{{"source", n}} }
	perSource := func(name, help string, typ Type, v func(*SourceTotals) float64) Family {
		f := Family{Name: Prefix + name, Help: help, Type: typ}
		for _, n := range names {
			f.Samples = append(f.Samples, Sample{Labels: src(n), Value: v(t.Sources[n])})
		}
		return f
	}
	perKind := func(name, help, label string, kinds []string, v func(*SourceTotals) map[string]float64) Family {
		f := Family{Name: Prefix + name, Help: help, Type: Counter}
		for _, n := range names {
			m := v(t.Sources[n])
			for _, k := range kinds {
				f.Samples = append(f.Samples, Sample{Labels: []Label{{"source", n}, {label, k}}, Value: m[k]})
			}
		}
		return f
	}
	fs := []Family{
		perSource("runs_total", "Runs that decided and acted, by program.", Counter,
			func(s *SourceTotals) float64 { return s.Runs }),
		perKind("decisions_total", "Decisions taken, one per domain per run, by kind.", "decision", DecisionKinds,
			func(s *SourceTotals) map[string]float64 { return s.Decisions }),
		perSource("mark_downs_total", "Instances marked down in Ganeti (jobs that succeeded).", Counter,
			func(s *SourceTotals) float64 { return s.MarkDowns }),
		perSource("destroys_total", "Preserved domains destroyed.", Counter,
			func(s *SourceTotals) float64 { return s.Destroys }),
		perSource("crash_restarts_total", "Instances started again through Ganeti after their crashed domain was destroyed.", Counter,
			func(s *SourceTotals) float64 { return s.CrashRestarts }),
		perKind("failures_total", "Failed runs (unreadable state, configuration) and failed items, by kind.", "kind", FailureKinds,
			func(s *SourceTotals) map[string]float64 { return s.Failures }),
		perSource("last_run_timestamp_seconds", "Unix time the last run started.", Gauge,
			func(s *SourceTotals) float64 { return s.LastRun }),
		perSource("last_run_duration_seconds", "How long the last run took.", Gauge,
			func(s *SourceTotals) float64 { return s.LastDuration }),
	}
	h := Family{Name: Prefix + "event_to_mark_down_seconds", Help: "Time from a domain event to the end of the mark-down it led to (userdown-watchd).", Type: Histogram}
	d := t.Delay
	if len(d.Bounds) != len(DelayBuckets) || len(d.Counts) != len(DelayBuckets)+1 {
		d = newBuckets()
	}
	var cum uint64
	for i, b := range d.Bounds {
		cum += d.Counts[i]
		h.Samples = append(h.Samples, Sample{Suffix: "_bucket", Labels: []Label{{"le", formatValue(b)}}, Value: float64(cum)})
	}
	cum += d.Counts[len(d.Bounds)]
	h.Samples = append(h.Samples,
		Sample{Suffix: "_bucket", Labels: []Label{{"le", formatValue(math.Inf(1))}}, Value: float64(cum)},
		Sample{Suffix: "_sum", Value: d.Sum},
		Sample{Suffix: "_count", Value: float64(d.Count)},
	)
	return append(fs, h)
}

// Store keeps the totals between runs (satisfied by *state.Store: a
// record in the state dir).
type Store interface {
	LoadRecord(name string) (data []byte, found bool, err error)
	SaveRecord(name string, data []byte) error
}

// TotalsRecord is the name of the totals' record in the Store.
const TotalsRecord = "metrics.json"

// Recorder adds each run to the totals kept in Store and writes the
// textfile. Callers hold the state's run lock, so that two processes
// never add at the same time.
type Recorder struct {
	Store Store
	// Textfile is node_exporter's file; "" writes none. It is written only
	// when its directory exists (node_exporter's textfile collector is
	// installed), atomically.
	Textfile string
}

// Record adds r to the totals and rewrites the textfile. Totals that
// cannot be read start over (counters that restart from zero are what
// Prometheus expects of a restarted exporter); the error then says so,
// but the run is still counted.
func (rc Recorder) Record(r Run) error {
	var errs []error
	t, err := rc.load()
	if err != nil {
		errs = append(errs, fmt.Errorf("%w (counting from zero)", err))
		t = NewTotals()
	}
	if err := t.Add(r); err != nil {
		return err
	}
	b, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if err := rc.Store.SaveRecord(TotalsRecord, append(b, '\n')); err != nil {
		errs = append(errs, fmt.Errorf("metrics: %w", err))
	}
	if _, err := WriteTextfile(rc.Textfile, t); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Load reads the totals saved by Record; none saved gives empty totals.
func Load(s Store) (Totals, error) { return Recorder{Store: s}.load() }

func (rc Recorder) load() (Totals, error) {
	b, found, err := rc.Store.LoadRecord(TotalsRecord)
	if err != nil {
		return Totals{}, fmt.Errorf("metrics: %w", err)
	}
	t := NewTotals()
	if !found {
		return t, nil
	}
	if err := json.Unmarshal(b, &t); err != nil {
		return Totals{}, fmt.Errorf("metrics %s: %w", TotalsRecord, err)
	}
	if t.Sources == nil {
		t.Sources = map[string]*SourceTotals{}
	}
	for n, s := range t.Sources {
		if s == nil {
			delete(t.Sources, n)
		}
	}
	return t, nil
}

// WriteTextfile writes t to path in the text exposition format, through a
// temporary file in the same directory and a rename, so node_exporter
// never reads half a file. It writes nothing and reports false when path
// is "" or its directory does not exist.
func WriteTextfile(path string, t Totals) (bool, error) {
	if path == "" {
		return false, nil
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || !fi.IsDir() {
		return false, nil
	}
	b, err := Format(t.Families())
	if err != nil {
		return false, err
	}
	if err := atomicfile.WriteFile(path, b, 0o644); err != nil {
		return false, fmt.Errorf("metrics textfile: %w", err)
	}
	return true, nil
}
