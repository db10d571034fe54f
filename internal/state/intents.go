package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"time"
)

// Intent records that a shutdown was asked for by Ganeti or an operator,
// so that detect does not take it for the user's own. The hooks record
// intents by instance name, the toolstack shim by domain uuid.
type Intent struct {
	Instance string `json:"instance,omitempty"` // hooks: by instance name
	UUID     string `json:"uuid,omitempty"`     // shim: by domain uuid
	// DomID is the domain the shim shut down.
	DomID  int    `json:"domid,omitempty"`
	Domain string `json:"domain,omitempty"` // domain name the shim saw
	// Listed says the hook read this node's domains when it recorded the
	// intent; DomIDs are then the instance's domains it saw (none when
	// the instance had no domain here). An intent covers only the
	// domains it was recorded for (design.md, "State files").
	Listed  bool      `json:"listed,omitempty"`
	DomIDs  []int     `json:"domids,omitempty"`
	Op      string    `json:"op"`     // stop|reboot|remove|migrate|failover|shutdown
	Source  string    `json:"source"` // hook|shim
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
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
	case len(in.DomIDs) > 0 && !in.Listed:
		return errors.New("intent names domids but not that the domains were listed")
	case (in.Listed || len(in.DomIDs) > 0) && in.Instance == "":
		return errors.New("only an intent by instance name lists its domids")
	}
	for _, id := range in.DomIDs {
		if id <= 0 {
			return fmt.Errorf("intent domid %d is not a guest's", id)
		}
	}
	return nil
}

// Live reports whether the intent still counts at now.
func (in Intent) Live(now time.Time) bool { return now.Before(in.Expires) }

// IntentKey is what an intent file's name says it is about: one of
// Instance and UUID, and the Op. It is known even when the file's
// content cannot be read.
type IntentKey struct {
	Instance string `json:"instance,omitempty"`
	UUID     string `json:"uuid,omitempty"`
	Op       string `json:"op"`
}

// Key is the intent's IntentKey.
func (in Intent) Key() IntentKey {
	return IntentKey{Instance: in.Instance, UUID: strings.ToLower(in.UUID), Op: in.Op}
}

// fileName is where an intent lives: one file per (instance, op) or
// (uuid, op), so that recording the same intent again replaces it. An
// intent recorded while the intents lock was held elsewhere gets a name
// of its own, base~unique.json, that no writer ever replaces.
func (k IntentKey) fileName() string { return k.base() + ".json" }

func (k IntentKey) base() string {
	if k.Instance != "" {
		return "instance@" + escape(k.Instance) + "@" + k.Op
	}
	return "uuid@" + escape(strings.ToLower(k.UUID)) + "@" + k.Op
}

// parseFileName reads the key back from an intent file's name.
func parseFileName(name string) (IntentKey, bool) {
	base, ok := strings.CutSuffix(name, ".json")
	if !ok {
		return IntentKey{}, false
	}
	base, _, _ = strings.Cut(base, "~")
	kind, rest, ok := strings.Cut(base, "@")
	if !ok {
		return IntentKey{}, false
	}
	esc, op, ok := strings.Cut(rest, "@")
	if !ok || !intentOps[op] {
		return IntentKey{}, false
	}
	who, err := url.PathUnescape(esc)
	if err != nil || who == "" {
		return IntentKey{}, false
	}
	switch kind {
	case "instance":
		return IntentKey{Instance: who, Op: op}, true
	case "uuid":
		return IntentKey{UUID: who, Op: op}, true
	}
	return IntentKey{}, false
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

// bounded is the intent as it counts at now under ttl: a creation time
// that is missing or in the future (a clock stepped back, a planted file)
// is taken as now, and the expiry is capped at creation plus ttl, so that
// no file, whatever it says, keeps an intent live longer than ttl after
// it was first read. why says what was changed ("" when nothing). Pure.
func (in Intent) bounded(now time.Time, ttl time.Duration) (out Intent, why string) {
	out = in
	var notes []string
	switch created, future := notFuture(in.Created, now); {
	case in.Created.IsZero():
		out.Created = now
		notes = append(notes, "no creation time: taken as now")
	case future:
		out.Created = created
		notes = append(notes, fmt.Sprintf("created %s, in the future: taken as now", in.Created.UTC().Format(time.RFC3339)))
	}
	if limit := out.Created.Add(ttl); out.Expires.After(limit) {
		out.Expires = limit
		notes = append(notes, fmt.Sprintf("expires %s, beyond creation + intent_ttl %s: capped at %s",
			in.Expires.UTC().Format(time.RFC3339), ttl, limit.UTC().Format(time.RFC3339)))
	}
	return out, strings.Join(notes, "; ")
}

// UnreadableIntentError is an intent file that could not be read or
// parsed (corrupt, too large, a link, invalid). The intent is ignored,
// but while Blocks (its file is younger than intent_ttl) the instance or
// domain its name gives must be neither marked down nor destroyed: it may
// be a shutdown Ganeti asked for.
type UnreadableIntentError struct {
	Path string
	// Key is what the file's name says; zero when the name says nothing.
	Key IntentKey
	// Blocks: the file was written less than intent_ttl ago.
	Blocks bool
	Err    error
}

// Error names the file and says what was wrong.
func (e *UnreadableIntentError) Error() string {
	return fmt.Sprintf("intent %s: %v, ignored", e.Path, e.Err)
}

// Unwrap returns the underlying error.
func (e *UnreadableIntentError) Unwrap() error { return e.Err }

// Unreadable returns the keys of the unreadable intents among problems
// (as Intents returns them) that still block their instance or domain.
func Unreadable(problems []error) []IntentKey {
	var out []IntentKey
	for _, p := range problems {
		var u *UnreadableIntentError
		if errors.As(p, &u) && u.Blocks && u.Key.Op != "" {
			out = append(out, u.Key)
		}
	}
	return out
}

// ContendedError says an intent was recorded without the intents lock,
// which another process held past the bound, under a name of its own.
// The intent counts as any other; the error is for the log.
type ContendedError struct {
	Lock string // the lock file
	File string // the intent's file
	Wait time.Duration
}

// Error says what happened; the intent is recorded.
func (e *ContendedError) Error() string {
	return fmt.Sprintf("%s held by another process for %s: intent recorded without the lock as %s", e.Lock, e.Wait, e.File)
}

// RecordIntent stores in, replacing an intent for the same instance (or
// uuid) and op. The write is atomic and serialised with other writers and
// with pruning. When the intents lock stays held past its bound, the
// intent is still recorded, under a name no writer replaces (so no
// pruner can lose it), and a *ContendedError says so.
func (s *Store) RecordIntent(in Intent) error {
	if err := in.Validate(); err != nil {
		return fmt.Errorf("record intent: %w", err)
	}
	b, err := json.MarshalIndent(in, "", "  ")
	if err != nil {
		return fmt.Errorf("record intent: %w", err)
	}
	b = append(b, '\n')
	r, err := s.openRoot(true)
	if err != nil {
		return fmt.Errorf("record intent: %w", err)
	}
	defer r.close()
	d, err := r.sub(intentsDirName, true)
	if err != nil {
		return fmt.Errorf("record intent: %w", err)
	}
	defer d.close()
	l, err := s.lockIntents(d)
	if errors.Is(err, context.DeadlineExceeded) {
		name := fmt.Sprintf("%s~%d-%d.json", in.Key().base(), os.Getpid(), time.Now().UnixNano())
		if err := d.writeFile(name, b); err != nil {
			return fmt.Errorf("record intent: the intents lock is held and %w", err)
		}
		return &ContendedError{Lock: d.path(intentsLockName), File: d.path(name), Wait: s.lockWait}
	}
	if err != nil {
		return fmt.Errorf("record intent: %w", err)
	}
	defer l.Unlock()
	if err := d.writeFile(in.Key().fileName(), b); err != nil {
		return fmt.Errorf("record intent: %w", err)
	}
	return nil
}

// lockIntents takes the lock that serialises intent writers with the
// pruning of expired intents, so that a pruner never removes an intent
// that was rewritten after it read the expired one.
func (s *Store) lockIntents(d *root) (*Lock, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.lockWait)
	defer cancel()
	return lockAt(ctx, d, intentsLockName, true)
}

// ClearIntents removes the intents recorded for instance with op, or every
// op of instance when op is "". Clearing what does not exist is no error.
func (s *Store) ClearIntents(instance, op string) error {
	if instance == "" {
		return errors.New("clear intents: no instance named")
	}
	return s.clear(func(k IntentKey) bool { return k.Instance == instance && (op == "" || k.Op == op) })
}

// ClearUUIDIntents removes every intent recorded for the domain uuid.
func (s *Store) ClearUUIDIntents(uuid string) error {
	if uuid == "" {
		return errors.New("clear intents: no uuid named")
	}
	uuid = strings.ToLower(uuid)
	return s.clear(func(k IntentKey) bool { return k.UUID != "" && strings.ToLower(k.UUID) == uuid })
}

func (s *Store) clear(match func(IntentKey) bool) error {
	return errors.Join(s.underIntentsLock("clear intents", func(d *root, names []string) []error {
		var errs []error
		for _, n := range names {
			if k, ok := parseFileName(n); ok && match(k) {
				if err := d.remove(n); err != nil {
					errs = append(errs, fmt.Errorf("clear intent: %w", err))
				}
			}
		}
		return errs
	})...)
}

// RemoveSpentIntents removes, under the intents lock, the files that
// still hold one of spent (the same instance or uuid, op and creation):
// an intent recorded again since, under the same name, stays. Errors are
// returned, one per file; a file gone already is none.
func (s *Store) RemoveSpentIntents(spent []Intent, now time.Time) []error {
	if len(spent) == 0 {
		return nil
	}
	return s.underIntentsLock("remove spent intents", func(d *root, names []string) []error {
		var problems []error
		for _, n := range names {
			in, _, err := s.readIntent(d, n, now)
			if err != nil {
				continue
			}
			for _, sp := range spent {
				if in.Key() == sp.Key() && in.Created.Equal(sp.Created) {
					if err := d.remove(n); err != nil && !notExist(err) {
						problems = append(problems, fmt.Errorf("remove spent intent: %w", err))
					}
					break
				}
			}
		}
		return problems
	})
}

// underIntentsLock runs f on intents/ and its intent files with the
// intents lock held; what names the step in errors. A missing intents/
// is nothing to do.
func (s *Store) underIntentsLock(what string, f func(d *root, names []string) []error) []error {
	d, names, err := s.openIntents()
	if err != nil {
		return []error{fmt.Errorf("%s: %w", what, err)}
	}
	if d == nil {
		return nil
	}
	defer d.close()
	l, err := s.lockIntents(d)
	if err != nil {
		return []error{fmt.Errorf("%s: %w", what, err)}
	}
	defer l.Unlock()
	return f(d, names)
}

// openIntents opens intents/ (nil when it does not exist) and lists its
// intent files (not the lock, not temporary files), sorted.
func (s *Store) openIntents() (*root, []string, error) {
	r, err := s.openRoot(false)
	if err != nil || r == nil {
		return nil, nil, err
	}
	defer r.close()
	d, err := r.sub(intentsDirName, false)
	if err != nil || d == nil {
		return nil, nil, err
	}
	ents, err := d.list()
	if err != nil {
		d.close()
		return nil, nil, err
	}
	var names []string
	for _, e := range ents {
		if n := e.Name(); !hidden(n) && strings.HasSuffix(n, ".json") {
			names = append(names, n)
		}
	}
	return d, names, nil
}

// Intents returns the intents live at now, sorted by file name, each
// bounded (a creation time in the future is taken as now, the expiry
// capped at creation plus intent_ttl). It only reads: expired intents
// stay until PruneIntents. A file that cannot be read or parsed is
// reported in problems as an *UnreadableIntentError naming it, and
// otherwise ignored; so are bounded intents, with what was changed.
// Problems never stop the caller.
func (s *Store) Intents(now time.Time) (live []Intent, problems []error) {
	d, names, err := s.openIntents()
	if err != nil {
		return nil, []error{fmt.Errorf("read intents: %w", err)}
	}
	if d == nil {
		return nil, nil
	}
	defer d.close()
	for _, n := range names {
		in, why, err := s.readIntent(d, n, now)
		if err != nil {
			if !notExist(err) { // removed since the listing: not a problem
				problems = append(problems, err)
			}
			continue
		}
		if why != "" {
			problems = append(problems, fmt.Errorf("intent %s: %s", d.path(n), why))
		}
		if in.Live(now) {
			live = append(live, in)
		}
	}
	return live, problems
}

// PruneIntents removes the intents expired at now and rewrites, bounded,
// those whose file says a creation in the future or an expiry beyond
// intent_ttl, so that their life is bounded from now on. It is an
// explicit step of the real runs (never of a dry run or a listing), done
// under the intents lock so that an intent rewritten meanwhile survives.
// Unreadable files are left for the operator (Intents reports them).
func (s *Store) PruneIntents(now time.Time) []error {
	return s.underIntentsLock("prune intents", func(d *root, names []string) []error {
		var problems []error
		for _, n := range names {
			in, why, err := s.readIntent(d, n, now)
			switch {
			case err != nil:
			case !in.Live(now):
				if err := d.remove(n); err != nil {
					problems = append(problems, fmt.Errorf("prune intent: %w", err))
				}
			case why != "":
				b, err := json.MarshalIndent(in, "", "  ")
				if err == nil {
					err = d.writeFile(n, append(b, '\n'))
				}
				if err != nil {
					problems = append(problems, fmt.Errorf("prune intent: bound %s: %w", d.path(n), err))
				}
			}
		}
		return problems
	})
}

// readIntent reads, validates and bounds the intent file name in d.
func (s *Store) readIntent(d *root, name string, now time.Time) (Intent, string, error) {
	b, fi, err := d.readFile(name, intentLimit)
	if err != nil {
		if notExist(err) {
			return Intent{}, "", err
		}
		return Intent{}, "", s.unreadable(d, name, fi, now, err)
	}
	var in Intent
	// Unknown fields are accepted: ignoring an intent written by a newer
	// version would be the unsafe direction.
	if err := json.Unmarshal(b, &in); err != nil {
		return Intent{}, "", s.unreadable(d, name, fi, now, fmt.Errorf("corrupt: %w", err))
	}
	if err := in.Validate(); err != nil {
		return Intent{}, "", s.unreadable(d, name, fi, now, fmt.Errorf("invalid: %w", err))
	}
	in, why := in.bounded(now, s.ttl)
	return in, why, nil
}

// unreadable builds the error for an intent file that cannot be used:
// it blocks what its name says for intent_ttl after the file's last
// change (a change in the future taken as now).
func (s *Store) unreadable(d *root, name string, fi fs.FileInfo, now time.Time, err error) error {
	u := &UnreadableIntentError{Path: d.path(name), Err: err}
	u.Key, _ = parseFileName(name)
	var mtime time.Time
	if fi != nil {
		mtime = fi.ModTime()
	} else if lfi, lerr := os.Lstat(u.Path); lerr == nil {
		mtime = lfi.ModTime()
	}
	if !mtime.IsZero() {
		mtime, _ = notFuture(mtime, now)
		u.Blocks = now.Before(mtime.Add(s.ttl))
	}
	return u
}
