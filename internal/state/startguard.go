package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"ganeti-userdown/internal/atomicfile"
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

func (s *Store) guardDir() string { return filepath.Join(s.dir, "start-guard") }

func (s *Store) markDownPath(instance string) string {
	return filepath.Join(s.guardDir(), "markdown@"+escape(instance)+".json")
}

func (s *Store) allowancePath(instance string) string {
	return filepath.Join(s.guardDir(), "allow@"+escape(instance)+".json")
}

// RecordMarkDown stores r, replacing an earlier record of the instance.
func (s *Store) RecordMarkDown(r MarkDown) error {
	if r.Instance == "" || r.Submitted.IsZero() {
		return errors.New("record mark-down: no instance or no time")
	}
	return s.writeRecord(s.markDownPath(r.Instance), r)
}

// MarkDownRecord returns the mark-down record of instance; found is false
// when there is none.
func (s *Store) MarkDownRecord(instance string) (MarkDown, bool, error) {
	return readFor(s.markDownPath(instance), instance, func(r MarkDown) string { return r.Instance })
}

// ClearMarkDown removes the mark-down record of instance; removing what
// does not exist is no error.
func (s *Store) ClearMarkDown(instance string) error {
	return removeRecord(s.markDownPath(instance))
}

// AllowStart stores a, replacing an earlier allowance of the instance.
func (s *Store) AllowStart(a StartAllowance) error {
	if a.Instance == "" || a.Expires.IsZero() {
		return errors.New("allow start: no instance or no expiry")
	}
	return s.writeRecord(s.allowancePath(a.Instance), a)
}

// StartAllowanceOf returns the start allowance of instance; found is false
// when there is none.
func (s *Store) StartAllowanceOf(instance string) (StartAllowance, bool, error) {
	return readFor(s.allowancePath(instance), instance, func(a StartAllowance) string { return a.Instance })
}

// ClearStartAllowance removes the start allowance of instance.
func (s *Store) ClearStartAllowance(instance string) error {
	return removeRecord(s.allowancePath(instance))
}

// readFor reads the record at path, which must be about instance
// (nameOf says whom a record names); found is false when there is none.
func readFor[T any](path, instance string, nameOf func(T) string) (v T, found bool, err error) {
	found, err = readRecord(path, &v)
	if err == nil && found && nameOf(v) != instance {
		var zero T
		return zero, false, fmt.Errorf("%s names instance %q, not %s", path, nameOf(v), instance)
	}
	return v, found, err
}

func (s *Store) writeRecord(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := atomicfile.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func readRecord(path string, v any) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		if notExist(err) {
			return false, nil
		}
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxRecord+1))
	if err != nil {
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > maxRecord {
		return false, fmt.Errorf("read %s: larger than %d bytes", path, maxRecord)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("%s: corrupt: %w", path, err)
	}
	return true, nil
}

func removeRecord(path string) error {
	if err := os.Remove(path); err != nil && !notExist(err) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}
