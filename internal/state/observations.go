package state

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"time"

	"ganeti-userdown/internal/atomicfile"
	"ganeti-userdown/internal/xen"
)

// Observation records when a domain was first seen shut down, and has
// been seen shut down at every run since. With xm a shutdown counts only
// once it is older than the settle period: xm shows a reboot in flight
// exactly like a poweroff.
type Observation struct {
	Name  string    `json:"name"`
	DomID int       `json:"domid"`
	UUID  string    `json:"uuid,omitempty"`
	Since time.Time `json:"since"`
}

// Observations are keyed by ObservationKey.
type Observations map[string]Observation

// ObservationKey identifies one incarnation of a domain: its uuid when the
// listing carries it, else its name and domid (a restarted domain gets a
// new domid).
func ObservationKey(d xen.Domain) string {
	if d.UUID != "" {
		return "uuid:" + d.UUID
	}
	return "name:" + d.Name + "#" + strconv.Itoa(d.ID)
}

// Observe returns the observations after seeing domains at now: every
// domain that is shut down or crashed keeps its earlier observation or
// gets one dated now; every other entry (the domain is gone or runs again)
// is dropped, since the observation must be continuous. prev is not
// modified.
func Observe(prev Observations, domains []xen.Domain, now time.Time) Observations {
	next := make(Observations)
	for _, d := range domains {
		if d.IsDom0() || !d.State.Dead() {
			continue
		}
		k := ObservationKey(d)
		if o, ok := prev[k]; ok && o.Name == d.Name && o.DomID == d.ID {
			next[k] = o
			continue
		}
		next[k] = Observation{Name: d.Name, DomID: d.ID, UUID: d.UUID, Since: now}
	}
	return next
}

// Since returns when d was first seen shut down, if it was.
func (o Observations) Since(d xen.Domain) (time.Time, bool) {
	ob, ok := o[ObservationKey(d)]
	if !ok || ob.Name != d.Name || ob.DomID != d.ID {
		return time.Time{}, false
	}
	return ob.Since, true
}

// observationsFile is the on-disk form: a sorted list, stable to diff.
type observationsFile struct {
	Observations []keyedObservation `json:"observations"`
}

type keyedObservation struct {
	Key string `json:"key"`
	Observation
}

// LoadObservations reads the stored observations; a missing file is an
// empty set. A corrupt file is an error naming it (the caller should go on
// with an empty set, which only delays action).
func (s *Store) LoadObservations() (Observations, error) {
	path := s.ObservationsPath()
	b, err := os.ReadFile(path)
	if err != nil {
		if notExist(err) {
			return Observations{}, nil
		}
		return Observations{}, fmt.Errorf("read observations: %w", err)
	}
	var f observationsFile
	if err := json.Unmarshal(b, &f); err != nil {
		return Observations{}, fmt.Errorf("observations %s: corrupt: %w", path, err)
	}
	o := make(Observations, len(f.Observations))
	for _, k := range f.Observations {
		o[k.Key] = k.Observation
	}
	return o, nil
}

// SaveObservations replaces the stored observations atomically.
func (s *Store) SaveObservations(o Observations) error {
	f := observationsFile{Observations: make([]keyedObservation, 0, len(o))}
	for k, ob := range o {
		f.Observations = append(f.Observations, keyedObservation{Key: k, Observation: ob})
	}
	sort.Slice(f.Observations, func(i, j int) bool { return f.Observations[i].Key < f.Observations[j].Key })
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("save observations: %w", err)
	}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return fmt.Errorf("save observations: %w", err)
	}
	if err := atomicfile.WriteFile(s.ObservationsPath(), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("save observations: %w", err)
	}
	return nil
}
