package state

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"

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
// empty set. A file that cannot be read or parsed (corrupt, too large, a
// link) is a problem naming it, and the set is empty: starting over only
// delays acting on a shutdown by settle. An observation dated after now
// (a clock stepped back, a planted file) is taken as made now, and
// reported. It only reads.
func (s *Store) LoadObservations(now time.Time) (Observations, []error) {
	r, err := s.openRoot(false)
	if err != nil {
		return Observations{}, []error{fmt.Errorf("read observations: %w (starting over)", err)}
	}
	if r == nil {
		return Observations{}, nil
	}
	defer r.close()
	b, _, err := r.readFile(observationsFileName, observationsLimit)
	if err != nil {
		if notExist(err) {
			return Observations{}, nil
		}
		return Observations{}, []error{fmt.Errorf("read observations: %w (starting over)", err)}
	}
	var f observationsFile
	if err := json.Unmarshal(b, &f); err != nil {
		return Observations{}, []error{fmt.Errorf("observations %s: corrupt: %w (starting over)", r.path(observationsFileName), err)}
	}
	var problems []error
	o := make(Observations, len(f.Observations))
	for _, k := range f.Observations {
		ob := k.Observation
		if since, future := notFuture(ob.Since, now); future {
			problems = append(problems, fmt.Errorf("observations %s: %s (domid %d) seen shut down since %s, in the future: taken as now",
				r.path(observationsFileName), ob.Name, ob.DomID, ob.Since.UTC().Format(time.RFC3339)))
			ob.Since = since
		}
		o[k.Key] = ob
	}
	return o, problems
}

// SaveObservations replaces the stored observations atomically, creating
// the state directory when missing. Only real runs save.
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
	r, err := s.openRoot(true)
	if err != nil {
		return fmt.Errorf("save observations: %w", err)
	}
	defer r.close()
	if err := r.writeFile(observationsFileName, append(b, '\n')); err != nil {
		return fmt.Errorf("save observations: %w", err)
	}
	return nil
}

// Same reports whether a and b hold the same observations (saving b
// after loading a would change nothing).
func (a Observations) Same(b Observations) bool {
	if len(a) != len(b) {
		return false
	}
	for k, x := range a {
		y, ok := b[k]
		if !ok || x.Name != y.Name || x.DomID != y.DomID || x.UUID != y.UUID || !x.Since.Equal(y.Since) {
			return false
		}
	}
	return true
}
