package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"ganeti-userdown/internal/atomicfile"
)

// Intent records that a shutdown was asked for by Ganeti or an operator,
// so that detect does not take it for the user's own. The hooks record
// intents by instance name, the toolstack shim by domain uuid.
type Intent struct {
	Instance string    `json:"instance,omitempty"` // hooks: by instance name
	UUID     string    `json:"uuid,omitempty"`     // shim: by domain uuid
	DomID    int       `json:"domid,omitempty"`
	Domain   string    `json:"domain,omitempty"` // domain name the shim saw
	Op       string    `json:"op"`               // stop|reboot|remove|migrate|failover|shutdown
	Source   string    `json:"source"`           // hook|shim
	Created  time.Time `json:"created"`
	Expires  time.Time `json:"expires"`
}

// Operations an intent may name.
var intentOps = map[string]bool{
	"stop": true, "reboot": true, "remove": true, "migrate": true,
	"failover": true, "shutdown": true,
}

// Sources an intent may come from.
var intentSources = map[string]bool{"hook": true, "shim": true}

// Validate checks that the intent can be stored and matched.
func (in Intent) Validate() error {
	switch {
	case in.Instance == "" && in.UUID == "":
		return errors.New("intent names neither an instance nor a domain uuid")
	case in.Instance != "" && in.UUID != "":
		return errors.New("intent names both an instance and a domain uuid")
	case !intentOps[in.Op]:
		return fmt.Errorf("intent op %q is not one of stop, reboot, remove, migrate, failover, shutdown", in.Op)
	case !intentSources[in.Source]:
		return fmt.Errorf("intent source %q is not hook or shim", in.Source)
	case in.Expires.IsZero():
		return errors.New("intent has no expiry")
	}
	return nil
}

// Live reports whether the intent still counts at now.
func (in Intent) Live(now time.Time) bool { return now.Before(in.Expires) }

// fileName is where an intent lives: one file per (instance, op) or
// (uuid, op), so that recording the same intent again replaces it.
func (in Intent) fileName() string {
	if in.Instance != "" {
		return "instance@" + escape(in.Instance) + "@" + in.Op + ".json"
	}
	return "uuid@" + escape(strings.ToLower(in.UUID)) + "@" + in.Op + ".json"
}

// escape keeps names safe as one path element: letters, digits, '.', '-'
// and '_' pass, anything else becomes %XX.
func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || (c == '.' && i > 0) {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// RecordIntent stores in, replacing an intent for the same instance (or
// uuid) and op. The write is atomic and serialised with other writers and
// with pruning.
func (s *Store) RecordIntent(in Intent) error {
	if err := in.Validate(); err != nil {
		return fmt.Errorf("record intent: %w", err)
	}
	b, err := json.MarshalIndent(in, "", "  ")
	if err != nil {
		return fmt.Errorf("record intent: %w", err)
	}
	b = append(b, '\n')
	if err := os.MkdirAll(s.intentDir(), 0o755); err != nil {
		return fmt.Errorf("record intent: %w", err)
	}
	l, err := s.lockIntents()
	if err != nil {
		return fmt.Errorf("record intent: %w", err)
	}
	defer l.Unlock()
	path := filepath.Join(s.intentDir(), in.fileName())
	if err := atomicfile.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("record intent: %w", err)
	}
	return nil
}

// ClearIntents removes the intents recorded for instance with op, or every
// op of instance when op is "". Clearing what does not exist is no error.
func (s *Store) ClearIntents(instance, op string) error {
	if instance == "" {
		return errors.New("clear intents: no instance named")
	}
	prefix := "instance@" + escape(instance) + "@"
	return s.clear(prefix, op)
}

// ClearUUIDIntents removes every intent recorded for the domain uuid.
func (s *Store) ClearUUIDIntents(uuid string) error {
	if uuid == "" {
		return errors.New("clear intents: no uuid named")
	}
	return s.clear("uuid@"+escape(strings.ToLower(uuid))+"@", "")
}

func (s *Store) clear(prefix, op string) error {
	names, err := s.intentFiles()
	if err != nil {
		return fmt.Errorf("clear intents: %w", err)
	}
	l, err := s.lockIntents()
	if err != nil {
		return fmt.Errorf("clear intents: %w", err)
	}
	defer l.Unlock()
	var errs []error
	for _, n := range names {
		if !strings.HasPrefix(n, prefix) {
			continue
		}
		if op != "" && n != prefix+op+".json" {
			continue
		}
		if err := os.Remove(filepath.Join(s.intentDir(), n)); err != nil && !notExist(err) {
			errs = append(errs, fmt.Errorf("clear intent: %w", err))
		}
	}
	return errors.Join(errs...)
}

// intentFiles lists the intent files (not the lock, not temporary files).
func (s *Store) intentFiles() ([]string, error) {
	ents, err := os.ReadDir(s.intentDir())
	if err != nil {
		if notExist(err) {
			return nil, nil
		}
		return nil, err
	}
	var names []string
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, ".") || !strings.HasSuffix(n, ".json") || !e.Type().IsRegular() {
			continue
		}
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// Intents returns the intents live at now, sorted by file name, and
// removes the expired ones. A file that cannot be read or parsed is
// reported in problems (naming the file) and otherwise ignored: it never
// stops the caller.
func (s *Store) Intents(now time.Time) (live []Intent, problems []error) {
	names, err := s.intentFiles()
	if err != nil {
		return nil, []error{fmt.Errorf("read intents %s: %w", s.intentDir(), err)}
	}
	var expired []string
	for _, n := range names {
		path := filepath.Join(s.intentDir(), n)
		in, err := readIntent(path)
		if err != nil {
			if !notExist(err) { // removed since the listing: not a problem
				problems = append(problems, err)
			}
			continue
		}
		if in.Live(now) {
			live = append(live, in)
		} else {
			expired = append(expired, path)
		}
	}
	if len(expired) > 0 {
		problems = append(problems, s.prune(expired, now)...)
	}
	return live, problems
}

// prune removes the expired intent files, re-reading each under the
// intents lock so that an intent rewritten meanwhile survives.
func (s *Store) prune(paths []string, now time.Time) []error {
	l, err := s.lockIntents()
	if err != nil {
		return []error{fmt.Errorf("prune intents: %w", err)}
	}
	defer l.Unlock()
	var problems []error
	for _, path := range paths {
		in, err := readIntent(path)
		if err != nil || in.Live(now) {
			continue
		}
		if err := os.Remove(path); err != nil && !notExist(err) {
			problems = append(problems, fmt.Errorf("prune intent: %w", err))
		}
	}
	return problems
}

func readIntent(path string) (Intent, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Intent{}, fmt.Errorf("read intent: %w", err)
	}
	var in Intent
	// Unknown fields are accepted: ignoring an intent written by a newer
	// version would be the unsafe direction.
	if err := json.Unmarshal(b, &in); err != nil {
		return Intent{}, fmt.Errorf("intent %s: corrupt, ignored: %w", path, err)
	}
	if err := in.Validate(); err != nil {
		return Intent{}, fmt.Errorf("intent %s: invalid, ignored: %w", path, err)
	}
	return in, nil
}
