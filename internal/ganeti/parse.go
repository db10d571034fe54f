package ganeti

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// Result status codes of Ganeti's query results: each value of a query row
// is a [status, value] pair.
const (
	rsNormal  = 0 // the value is valid
	rsUnknown = 1 // the field is not known to this Ganeti version
	rsNoData  = 2 // no data (e.g. an RPC failed)
	rsUnavail = 3 // not available for this item
	rsOffline = 4 // the resource is offline
)

var rsNames = map[int]string{
	rsNormal:  "normal",
	rsUnknown: "unknown field",
	rsNoData:  "no data",
	rsUnavail: "unavailable",
	rsOffline: "offline",
}

// queryResponse is the body of /2/query/<resource>.
type queryResponse struct {
	Fields []struct {
		Name string `json:"name"`
		Kind string `json:"kind"`
	} `json:"fields"`
	Data [][][]json.RawMessage `json:"data"`
}

// cell is one [status, value] pair of a query row.
type cell struct {
	status int
	value  json.RawMessage
}

func decodeStrict(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return err
	}
	if _, err := d.Token(); err != io.EOF {
		return fmt.Errorf("trailing data after the JSON value")
	}
	return nil
}

// parseQuery decodes a query body and returns, for each row, the cells of
// the wanted fields in the order of want. The answer may carry more
// fields than wanted (they are ignored) but not fewer.
func parseQuery(body []byte, want []string) ([][]cell, error) {
	var qr queryResponse
	if err := decodeStrict(body, &qr); err != nil {
		return nil, fmt.Errorf("query result: %w", err)
	}
	if qr.Fields == nil || qr.Data == nil {
		return nil, fmt.Errorf(`query result: missing "fields" or "data"`)
	}
	index := make(map[string]int, len(qr.Fields))
	for i, f := range qr.Fields {
		index[f.Name] = i
	}
	pos := make([]int, len(want))
	for i, w := range want {
		p, ok := index[w]
		if !ok {
			return nil, fmt.Errorf("query result: field %s missing", w)
		}
		pos[i] = p
	}
	rows := make([][]cell, 0, len(qr.Data))
	for r, row := range qr.Data {
		if len(row) != len(qr.Fields) {
			return nil, fmt.Errorf("query result: row %d has %d values for %d fields", r, len(row), len(qr.Fields))
		}
		cells := make([]cell, len(want))
		for i, p := range pos {
			pair := row[p]
			if len(pair) != 2 {
				return nil, fmt.Errorf("query result: row %d field %s: want [status, value], got %d items", r, want[i], len(pair))
			}
			st, err := strconv.Atoi(string(pair[0]))
			if err != nil || rsNames[st] == "" {
				return nil, fmt.Errorf("query result: row %d field %s: bad result status %s", r, want[i], truncate(pair[0]))
			}
			cells[i] = cell{status: st, value: pair[1]}
		}
		rows = append(rows, cells)
	}
	return rows, nil
}

func truncate(b []byte) string {
	const max = 80
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}

// cellString returns a normal text value.
func cellString(c cell, field string) (string, error) {
	if c.status != rsNormal {
		return "", fmt.Errorf("field %s: %s", field, rsNames[c.status])
	}
	var s string
	if err := json.Unmarshal(c.value, &s); err != nil {
		return "", fmt.Errorf("field %s: want a string, got %s", field, truncate(c.value))
	}
	return s, nil
}

// cellStrings returns a normal list-of-text value (null is the empty list).
func cellStrings(c cell, field string) ([]string, error) {
	if c.status != rsNormal {
		return nil, fmt.Errorf("field %s: %s", field, rsNames[c.status])
	}
	var ss []string
	if err := json.Unmarshal(c.value, &ss); err != nil {
		return nil, fmt.Errorf("field %s: want a list of strings, got %s", field, truncate(c.value))
	}
	return ss, nil
}

// ParseInstanceQuery parses the body of PUT /2/query/instance, which must
// carry the fields "name", "pnode", "admin_state", "admin_state_source"
// and "tags" (others are ignored). admin_state_source may be an unknown
// field (Ganeti before 2.11.2); every other field must be present with a value of its type, or
// the whole answer is refused: acting on a partial view is unsafe.
func ParseInstanceQuery(body []byte) ([]Instance, error) {
	ins, _, err := parseInstanceQuery(body)
	return ins, err
}

// parseInstanceQuery is ParseInstanceQuery that also reports whether the
// answer carried admin_state_source values (a Ganeti that knows the
// field: 2.11.2 and later).
func parseInstanceQuery(body []byte) (_ []Instance, sourceKnown bool, _ error) {
	rows, err := parseQuery(body, instanceFields)
	if err != nil {
		return nil, false, err
	}
	out := make([]Instance, 0, len(rows))
	for r, row := range rows {
		var in Instance
		if in.Name, err = cellString(row[0], "name"); err != nil || in.Name == "" {
			return nil, false, fmt.Errorf("query result: row %d: %v", r, orEmpty(err, "name"))
		}
		if in.PrimaryNode, err = cellString(row[1], "pnode"); err != nil || in.PrimaryNode == "" {
			return nil, false, fmt.Errorf("query result: instance %s: %v", in.Name, orEmpty(err, "pnode"))
		}
		st, err := cellString(row[2], "admin_state")
		if err != nil {
			return nil, false, fmt.Errorf("query result: instance %s: %w", in.Name, err)
		}
		in.AdminState, err = parseAdminState(st)
		if err != nil {
			return nil, false, fmt.Errorf("query result: instance %s: %w", in.Name, err)
		}
		if row[3].status == rsNormal {
			sourceKnown = true
			if in.AdminStateSource, err = cellString(row[3], "admin_state_source"); err != nil {
				return nil, false, fmt.Errorf("query result: instance %s: %w", in.Name, err)
			}
		}
		if in.Tags, err = cellStrings(row[4], "tags"); err != nil {
			return nil, false, fmt.Errorf("query result: instance %s: %w", in.Name, err)
		}
		out = append(out, in)
	}
	return out, sourceKnown, nil
}

func orEmpty(err error, field string) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("field %s: empty", field)
}

func parseAdminState(s string) (AdminState, error) {
	switch a := AdminState(s); a {
	case AdminUp, AdminDown, AdminOffline:
		return a, nil
	}
	return "", fmt.Errorf("field admin_state: unknown state %q", s)
}

// Lock is one row of Ganeti's lock query.
type Lock struct {
	Name string
	// Mode is "exclusive" or "shared" while held, "" when free (Ganeti
	// 2.9-2.11 also list "deleted" locks).
	Mode string
	// Owners hold the lock.
	Owners []LockHolder
	// Pending wait for it.
	Pending []LockHolder
}

// LockHolder is a client of Ganeti's lock manager that owns a lock or
// waits for it, named as the lock query names it. Any holder, whatever
// its spelling, means the lock is taken.
type LockHolder struct {
	// Name is Ganeti's text for the holder: a job id ("27", Ganeti 2.12
	// and later, where the lock daemon names jobs by id), a masterd
	// thread name ("Jq3/Job15/I_SHUTDOWN", Ganeti 2.9 to 2.11: job queue
	// worker 3 running job 15's opcode OP_INSTANCE_SHUTDOWN; other
	// masterd threads too), or a client that is no job, JSON-quoted by
	// the lock daemon (`"MainThread"`, 2.12 and later).
	Name string
	// Job is the id of the job Name names, 0 when it names none (Ganeti's
	// job ids start at 1).
	Job int64
}

// jobWorkerRe matches the name Ganeti 2.9-2.11 give a job queue worker
// thread while it runs a job: "Jq<worker>/Job<id>", then "/<opcode
// summary>" while an opcode runs (lib/jqueue: _JobQueueWorker's
// _GetWorkerName with lib/workerpool's BaseWorker.SetTaskName).
var jobWorkerRe = regexp.MustCompile(`^Jq[0-9]+/Job([0-9]+)(/.*)?$`)

// ParseLockHolder reads one owner or pending entry of a lock, in any of
// the spellings Ganeti uses (see LockHolder). The job id is read where
// the text carries one; any other non-empty text is a holder that names
// no job.
func ParseLockHolder(s string) (LockHolder, error) {
	if s == "" {
		return LockHolder{}, fmt.Errorf("empty lock owner")
	}
	h := LockHolder{Name: s}
	id := s
	if m := jobWorkerRe.FindStringSubmatch(s); m != nil {
		id = m[1]
	}
	if n, err := strconv.ParseInt(id, 10, 64); err == nil && n > 0 && strings.Trim(id, "0123456789") == "" {
		h.Job = n
	}
	return h, nil
}

// ParseLockQuery parses the body of PUT /2/query/lock, which must carry
// the fields "name", "mode", "owner" and "pending". It reads every
// version's shape: owners as job ids ("27") or other clients
// (`"\"MainThread\""`) from Ganeti 2.12 on, as thread names
// ("Jq3/Job15/I_SHUTDOWN") with null for none before; pending as [[mode,
// [holder, ...]], ...], with numbers for the "job/<id>" rows of 2.9-2.11.
func ParseLockQuery(body []byte) ([]Lock, error) {
	rows, err := parseQuery(body, lockFields)
	if err != nil {
		return nil, err
	}
	out := make([]Lock, 0, len(rows))
	for r, row := range rows {
		var l Lock
		if l.Name, err = cellString(row[0], "name"); err != nil {
			return nil, fmt.Errorf("lock query: row %d: %w", r, err)
		}
		if row[1].status != rsNormal {
			return nil, fmt.Errorf("lock query: %s: field mode: %s", l.Name, rsNames[row[1].status])
		}
		if string(row[1].value) != "null" {
			if err := json.Unmarshal(row[1].value, &l.Mode); err != nil {
				return nil, fmt.Errorf("lock query: %s: field mode: want a string or null, got %s", l.Name, truncate(row[1].value))
			}
		}
		if row[2].status != rsNormal {
			return nil, fmt.Errorf("lock query: %s: field owner: %s", l.Name, rsNames[row[2].status])
		}
		if l.Owners, err = lockHolders(row[2].value); err != nil {
			return nil, fmt.Errorf("lock query: %s: field owner: %w", l.Name, err)
		}
		if row[3].status != rsNormal {
			return nil, fmt.Errorf("lock query: %s: field pending: %s", l.Name, rsNames[row[3].status])
		}
		// pending: [[mode, [holder, ...]], ...] or null
		var pend [][]json.RawMessage
		if err := json.Unmarshal(row[3].value, &pend); err != nil {
			return nil, fmt.Errorf("lock query: %s: field pending: want [[mode, [owner, ...]], ...], got %s", l.Name, truncate(row[3].value))
		}
		for _, p := range pend {
			if len(p) != 2 {
				return nil, fmt.Errorf("lock query: %s: field pending: want [mode, [owner, ...]], got %d items", l.Name, len(p))
			}
			hs, err := lockHolders(p[1])
			if err != nil {
				return nil, fmt.Errorf("lock query: %s: field pending: %w", l.Name, err)
			}
			l.Pending = append(l.Pending, hs...)
		}
		out = append(out, l)
	}
	return out, nil
}

// lockHolders reads a JSON list of holders: strings, or numbers (job ids);
// null is the empty list.
func lockHolders(v json.RawMessage) ([]LockHolder, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(v, &raw); err != nil {
		return nil, fmt.Errorf("want a list of owners, got %s", truncate(v))
	}
	var out []LockHolder
	for _, r := range raw {
		var s string
		if err := json.Unmarshal(r, &s); err != nil {
			id, err := parseJobID(r)
			if err != nil {
				return nil, fmt.Errorf("owner %s is neither a string nor a job id", truncate(r))
			}
			out = append(out, LockHolder{Name: strconv.FormatInt(id, 10), Job: id})
			continue
		}
		h, err := ParseLockHolder(s)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, nil
}

// LockedInstances returns which of names a job holds or waits for: lock
// "instance/<name>" with an owner or a pending job. A job waiting for the
// lock is about to act on the instance, so it counts as holding it.
func LockedInstances(locks []Lock, names []string) map[string]bool {
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	out := make(map[string]bool)
	for _, l := range locks {
		name, ok := strings.CutPrefix(l.Name, "instance/")
		if !ok || !want[name] {
			continue
		}
		if len(l.Owners) > 0 || len(l.Pending) > 0 {
			out[name] = true
		}
	}
	return out
}

// parseJobID reads a job id: a JSON number, or a string of digits as
// older Ganeti versions send.
func parseJobID(b []byte) (int64, error) {
	s := strings.TrimSpace(string(b))
	if uq, err := strconv.Unquote(s); err == nil {
		s = uq
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 0 {
		return 0, fmt.Errorf("not a job id: %s", truncate(b))
	}
	return id, nil
}

// ParseJobID parses the answer to a RAPI write: a bare job id.
func ParseJobID(body []byte) (int64, error) {
	return parseJobID(bytes.TrimSpace(body))
}

// ParseCancelAnswer parses the answer to DELETE /2/jobs/<id>: Ganeti's
// [success, message] pair, e.g. [true, "Dequeued job 28"] or [false, "Job
// no longer waiting, can't cancel (informed it anyway)"].
func ParseCancelAnswer(body []byte) (ok bool, msg string, err error) {
	var pair []json.RawMessage
	if err := json.Unmarshal(body, &pair); err != nil || len(pair) != 2 {
		return false, "", fmt.Errorf("job cancel answer is not [success, message]: %s", truncate(body))
	}
	if err := json.Unmarshal(pair[0], &ok); err != nil {
		return false, "", fmt.Errorf("job cancel answer: success is not a boolean: %s", truncate(body))
	}
	if err := json.Unmarshal(pair[1], &msg); err != nil {
		return false, "", fmt.Errorf("job cancel answer: message is not a string: %s", truncate(body))
	}
	return ok, msg, nil
}

// jobResponse is the part of GET /2/jobs/<id> ganeti-userdown reads.
type jobResponse struct {
	ID       json.RawMessage   `json:"id"`
	Status   *string           `json:"status"`
	OpStatus []string          `json:"opstatus"`
	OpResult []json.RawMessage `json:"opresult"`
}

var jobStatuses = map[string]bool{
	JobQueued: true, JobWaiting: true, JobCanceling: true, JobRunning: true,
	JobCanceled: true, JobSuccess: true, JobError: true,
}

// ParseJob parses the body of GET /2/jobs/<id>. gone reports that the job
// failed because the instance is not known to the cluster.
func ParseJob(body []byte) (job Job, gone bool, err error) {
	var jr jobResponse
	if err := decodeStrict(body, &jr); err != nil {
		return Job{}, false, fmt.Errorf("job: %w", err)
	}
	if jr.ID == nil || jr.Status == nil {
		return Job{}, false, fmt.Errorf(`job: missing "id" or "status"`)
	}
	if job.ID, err = parseJobID(jr.ID); err != nil {
		return Job{}, false, fmt.Errorf("job: %w", err)
	}
	job.Status = *jr.Status
	if !jobStatuses[job.Status] {
		return Job{}, false, fmt.Errorf("job %d: unknown status %q", job.ID, job.Status)
	}
	if job.Status == JobError || job.Status == JobCanceled {
		var msgs []string
		for i, r := range jr.OpResult {
			if i < len(jr.OpStatus) && jr.OpStatus[i] == JobSuccess {
				continue
			}
			text, g := opError(r)
			gone = gone || g
			if text != "" {
				msgs = append(msgs, text)
			}
		}
		job.Error = strings.Join(msgs, "; ")
		if job.Error == "" {
			job.Error = "job " + job.Status
		}
	}
	return job, gone, nil
}

// opError formats a failed opcode's result, ["ErrorClass", args]. gone is
// true for Ganeti's "unknown entity" prerequisite error.
func opError(raw json.RawMessage) (text string, gone bool) {
	var pair []json.RawMessage
	if err := json.Unmarshal(raw, &pair); err != nil || len(pair) != 2 {
		if string(raw) == "null" {
			return "", false
		}
		return truncate(raw), false
	}
	var class string
	if err := json.Unmarshal(pair[0], &class); err != nil {
		return truncate(raw), false
	}
	var parts []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			parts = append(parts, x)
		case []any:
			for _, e := range x {
				walk(e)
			}
		case nil:
		default:
			parts = append(parts, fmt.Sprint(x))
		}
	}
	var args any
	if err := json.Unmarshal(pair[1], &args); err == nil {
		walk(args)
	}
	if class == "OpPrereqError" && len(parts) >= 2 && parts[len(parts)-1] == "unknown_entity" {
		gone = true
	}
	return class + ": " + strings.Join(parts, "; "), gone
}

// apiError is RAPI's error body.
type apiError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Explain string `json:"explain"`
}

// parseAPIError reads RAPI's {"code", "message", "explain"} error body;
// Ganeti HTML-escapes the message.
func parseAPIError(body []byte) (apiError, bool) {
	var e apiError
	if err := json.Unmarshal(body, &e); err != nil || (e.Message == "" && e.Explain == "") {
		return apiError{}, false
	}
	e.Message = html.UnescapeString(e.Message)
	e.Explain = html.UnescapeString(e.Explain)
	return e, true
}
