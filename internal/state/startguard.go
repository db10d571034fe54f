package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// MarkDown records that ganeti-userdown asked Ganeti to mark Instance
// down, written on the instance's primary node right before the job is
// submitted. The instance-start pre hook reads it to refuse the restart a
// watcher queued behind the mark-down from a status it read before
// (design.md, "The start guard").
type MarkDown struct {
	Instance string `json:"instance"`
	// DomID, UUID and State are the powered-off domain the mark-down was
	// decided on.
	DomID int    `json:"domid"`
	UUID  string `json:"uuid,omitempty"`
	State string `json:"state,omitempty"`
	// Submitted is when the job was about to be submitted.
	Submitted time.Time `json:"submitted"`
}

// StartAllowance records that an operator allowed the next start of
// Instance on this node (`userdown-hook --allow-start`), until Expires.
type StartAllowance struct {
	Instance string    `json:"instance"`
	Created  time.Time `json:"created"`
	Expires  time.Time `json:"expires"`
}

// maxRecord bounds the read of one start-guard record: they are a few
// hundred bytes.
const maxRecord = 64 << 10

// guardDirName is the subdirectory holding the start guard's records.
const guardDirName = "start-guard"

func markDownFile(instance string) string { return "markdown@" + escape(instance) + ".json" }

func allowanceFile(instance string) string { return "allow@" + escape(instance) + ".json" }

func inFlightFile(instance string) string { return "inflight@" + escape(instance) + ".json" }

// RecordMarkDownInFlight stores r as the mark-down of its instance whose
// job has not ended yet, written with the mark-down record and removed
// when the job ends. The instance-stop pre hook reads it to refuse that
// job once the domain it was decided on no longer runs there
// (design.md, "The stop guard").
func (s *Store) RecordMarkDownInFlight(r MarkDown) error {
	if r.Instance == "" || r.Submitted.IsZero() {
		return errors.New("record mark-down in flight: no instance or no time")
	}
	return s.writeRecord(inFlightFile(r.Instance), r)
}

// MarkDownInFlight returns the in-flight mark-down of instance; found is
// false when there is none.
func (s *Store) MarkDownInFlight(instance string) (MarkDown, bool, error) {
	return readFor(s, inFlightFile(instance), instance, func(r MarkDown) string { return r.Instance })
}

// ClearMarkDownInFlight removes the in-flight mark-down of instance;
// removing what does not exist is no error.
func (s *Store) ClearMarkDownInFlight(instance string) error {
	return s.removeRecord(inFlightFile(instance))
}

// RecordMarkDown stores r, replacing an earlier record of the instance.
func (s *Store) RecordMarkDown(r MarkDown) error {
	if r.Instance == "" || r.Submitted.IsZero() {
		return errors.New("record mark-down: no instance or no time")
	}
	return s.writeRecord(markDownFile(r.Instance), r)
}

// MarkDownRecord returns the mark-down record of instance; found is false
// when there is none.
func (s *Store) MarkDownRecord(instance string) (MarkDown, bool, error) {
	return readFor(s, markDownFile(instance), instance, func(r MarkDown) string { return r.Instance })
}

// ClearMarkDown removes the mark-down record of instance; removing what
// does not exist is no error.
func (s *Store) ClearMarkDown(instance string) error {
	return s.removeRecord(markDownFile(instance))
}

// AllowStart stores a, replacing an earlier allowance of the instance.
func (s *Store) AllowStart(a StartAllowance) error {
	if a.Instance == "" || a.Expires.IsZero() {
		return errors.New("allow start: no instance or no expiry")
	}
	return s.writeRecord(allowanceFile(a.Instance), a)
}

// StartAllowanceOf returns the start allowance of instance; found is false
// when there is none.
func (s *Store) StartAllowanceOf(instance string) (StartAllowance, bool, error) {
	return readFor(s, allowanceFile(instance), instance, func(a StartAllowance) string { return a.Instance })
}

// ClearStartAllowance removes the start allowance of instance.
func (s *Store) ClearStartAllowance(instance string) error {
	return s.removeRecord(allowanceFile(instance))
}

// readFor reads the record name of the start guard's directory, which
// must be about instance (nameOf says whom a record names); found is
// false when there is none.
func readFor[T any](s *Store, name, instance string, nameOf func(T) string) (v T, found bool, err error) {
	d, err := s.guardRoot(false)
	if err != nil || d == nil {
		return v, false, err
	}
	defer d.close()
	b, _, err := d.readFile(name, maxRecord)
	if err != nil {
		if notExist(err) {
			return v, false, nil
		}
		return v, false, err
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, false, fmt.Errorf("%s: corrupt: %w", d.path(name), err)
	}
	if nameOf(v) != instance {
		var zero T
		return zero, false, fmt.Errorf("%s names instance %q, not %s", d.path(name), nameOf(v), instance)
	}
	return v, true, nil
}

// guardRoot opens the start guard's directory in the checked state dir,
// never through a link; with create it makes both. A missing one
// without create is (nil, nil).
func (s *Store) guardRoot(create bool) (*root, error) {
	r, err := s.openRoot(create)
	if err != nil || r == nil {
		return nil, err
	}
	defer r.close()
	return r.sub(guardDirName, create)
}

func (s *Store) writeRecord(name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	d, err := s.guardRoot(true)
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	defer d.close()
	if err := d.writeFile(name, append(b, '\n')); err != nil {
		return fmt.Errorf("write %s: %w", d.path(name), err)
	}
	return nil
}

func (s *Store) removeRecord(name string) error {
	d, err := s.guardRoot(false)
	if err != nil || d == nil {
		return err
	}
	defer d.close()
	return d.remove(name)
}
