package ganeti

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"ganeti-userdown/internal/dnsname"
)

// RAPIOptions configure the RAPI backend.
type RAPIOptions struct {
	// URL is the master's RAPI, e.g. https://node1.example.com:5080.
	URL string
	// CAFile holds the certificate the server must present (Ganeti's
	// rapi.pem), pinned in place of host-name verification.
	CAFile string
	// CredentialsFile holds "user password" on one line, mode 0600.
	CredentialsFile string
	// Timeout bounds each request attempt (connection, headers and body)
	// and each wait for a job (default 30s).
	Timeout time.Duration
	// RunTimeout bounds everything the client asks of the cluster in one
	// run, every attempt, retry and job wait together (default
	// DefaultRunTimeout). The client's first call starts it.
	RunTimeout time.Duration
	// ShutdownTimeout is the timeout given to Ganeti's instance shutdown:
	// positive whole seconds (default 10s).
	ShutdownTimeout time.Duration
	// Retries is how many times a failed read is retried (default 3;
	// negative: none). Writes are never retried.
	Retries int
	// Backoff is the first wait between read attempts, doubled each time
	// (default 250ms).
	Backoff time.Duration
	// PollInterval is the first wait between job polls, doubled after
	// each poll up to 1s (default 20ms: a shutdown job that does not wait
	// for locks is seen finished without a long sleep, and a slow one is
	// polled about once a second).
	PollInterval time.Duration
	// QueueGrace is how long the mark-down job may stay queued or waiting
	// for locks before MarkDown cancels it (default 2s). It is cancelled
	// at once when the lock query shows another job owning the instance.
	// A job that already runs is never cancelled.
	QueueGrace time.Duration
}

// RAPI is the Client that talks to Ganeti's remote API over HTTPS. It works
// from every node.
type RAPI struct {
	base     *url.URL
	hc       *http.Client
	user     string
	password string
	o        RAPIOptions

	run *budget

	mu sync.Mutex
	// seen is what the answers so far told of the cluster.
	seen clusterFacts
}

// clusterFacts are what the RAPI client learns of the cluster's Ganeti
// version from its answers.
type clusterFacts struct {
	// version is read from the Server header of every answer.
	version      Version
	versionKnown bool
	// sourceField is 1 when an instance query answered the field
	// admin_state_source, -1 when it reported it unknown, 0 before.
	sourceField int
	// lockFilterRefused: a filtered lock query failed; send none again.
	lockFilterRefused bool
}

// facts returns what is known of the cluster.
func (r *RAPI) facts() clusterFacts {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen
}

func (r *RAPI) learn(fn func(*clusterFacts)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fn(&r.seen)
}

// Version returns the cluster's Ganeti version as its answers so far
// reported it (the Server header); ok is false before any answer, or
// when a proxy hides it.
func (r *RAPI) Version() (v Version, ok bool) {
	f := r.facts()
	return f.version, f.versionKnown
}

// acceptsAdminStateSource reports whether the cluster's instance shutdown
// takes admin_state_source (Ganeti 2.11.2 and later): from the version
// when known, else from whether the instance query knew the field (both
// arrived in 2.11.2). Unknown: no.
func (f clusterFacts) acceptsAdminStateSource() bool {
	if f.versionKnown {
		return f.version.AtLeast(versionAdminStateSource)
	}
	return f.sourceField > 0
}

// learnVersion returns what is known of the cluster, first asking GET
// /version (answered by the RAPI daemon itself, without the master's
// job queue) when no answer has told the version yet. Only the mark-down
// of a user shutdown needs it, and a run normally learnt it from its
// instance query already. A failed request leaves the version unknown.
func (r *RAPI) learnVersion(ctx context.Context) clusterFacts {
	if f := r.facts(); f.versionKnown || f.sourceField != 0 {
		return f
	}
	r.do(ctx, http.MethodGet, "/version", nil, nil, true)
	return r.facts()
}

// filtersLocks reports whether lock queries are sent with a filter: only
// to a cluster known to filter them (2.12 and later).
func (f clusterFacts) filtersLocks() bool {
	return f.versionKnown && f.version.AtLeast(versionLockFilter) && !f.lockFilterRefused
}

var _ Client = (*RAPI)(nil)

// NewRAPI checks the options, reads the credentials (refusing a file that
// group or others can read) and the pinned certificate.
func NewRAPI(o RAPIOptions) (*RAPI, error) {
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Timeout < 0 {
		return nil, fmt.Errorf("rapi: timeout must be positive, got %s", o.Timeout)
	}
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = 10 * time.Second
	}
	if _, err := shutdownSeconds(o.ShutdownTimeout); err != nil {
		return nil, fmt.Errorf("rapi: %w", err)
	}
	if o.Retries == 0 {
		o.Retries = 3
	} else if o.Retries < 0 {
		o.Retries = 0
	}
	if o.Backoff <= 0 {
		o.Backoff = 250 * time.Millisecond
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 20 * time.Millisecond
	}
	if o.QueueGrace <= 0 {
		o.QueueGrace = 2 * time.Second
	}
	run, err := newBudget(o.RunTimeout)
	if err != nil {
		return nil, fmt.Errorf("rapi: %w", err)
	}
	u, err := url.Parse(o.URL)
	if err != nil {
		return nil, fmt.Errorf("rapi url %q: %w", o.URL, err)
	}
	if u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("rapi url %q: want https://HOST[:PORT]", o.URL)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	user, pass, err := ReadCredentials(o.CredentialsFile)
	if err != nil {
		return nil, err
	}
	pinned, err := LoadPinnedCerts(o.CAFile)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy:               nil, // never route cluster credentials through a proxy
		TLSClientConfig:     pinnedTLSConfig(pinned),
		TLSHandshakeTimeout: o.Timeout,
		MaxIdleConns:        2,
		IdleConnTimeout:     30 * time.Second,
	}
	return &RAPI{
		base:     u,
		hc:       &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		user:     user,
		password: pass,
		o:        o,
		run:      run,
	}, nil
}

// RAPIError is a non-200 answer of the RAPI server.
type RAPIError struct {
	Method, Path string
	// Status is the HTTP status code.
	Status  int
	Message string
	Explain string
}

// Error names the request, the HTTP status and Ganeti's message.
func (e *RAPIError) Error() string {
	msg := fmt.Sprintf("rapi %s %s: HTTP %d", e.Method, e.Path, e.Status)
	if e.Message != "" {
		msg += " " + e.Message
	}
	if e.Explain != "" {
		msg += " (" + e.Explain + ")"
	}
	switch {
	case e.Status == http.StatusUnauthorized:
		msg += ": the user or password in [cluster] rapi_credentials is not accepted"
	case e.Status == http.StatusForbidden:
		msg += ": the user in [cluster] rapi_credentials lacks write access (give it the \"write\" option in Ganeti's RAPI users file)"
	case e.Status >= 500:
		msg += ": the Ganeti master failed to answer"
	}
	return msg
}

// retryable reports whether a failed read may be tried again: network
// errors and 5xx answers, never certificate or credential problems.
func retryable(err error) bool {
	if isPinError(err) {
		return false
	}
	var re *RAPIError
	if errors.As(err, &re) {
		return re.Status >= 500 && !lockFilterRefused(re)
	}
	return true
}

// lockFilterRefused reports the answer of Ganeti 2.9 to 2.11 to a lock
// query with a filter: HTTP 500 "Lock queries can't be filtered". It is no
// passing fault: not retried.
func lockFilterRefused(re *RAPIError) bool {
	return re.Status == http.StatusInternalServerError && strings.Contains(re.Message, "can't be filtered")
}

// do sends one request; read requests are retried with backoff, bounded by
// Retries and by ctx.
func (r *RAPI) do(ctx context.Context, method, path string, query url.Values, body any, read bool) ([]byte, error) {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return nil, fmt.Errorf("rapi %s %s: %w", method, path, err)
		}
	}
	attempts := 1
	if read {
		attempts += r.o.Retries
	}
	wait := r.o.Backoff
	var lastErr error
	for i := 0; i < attempts; i++ {
		if i > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, fmt.Errorf("%w (after %d attempts: %v)", ctxErr(ctx), i, lastErr)
			case <-t.C:
			}
			wait *= 2
		}
		b, err := r.once(ctx, method, path, query, payload)
		if err == nil {
			return b, nil
		}
		lastErr = err
		if !read || !retryable(err) || ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func (r *RAPI) once(ctx context.Context, method, path string, query url.Values, payload []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	target := r.base.String() + escapePath(path)
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return nil, fmt.Errorf("rapi %s %s: %w", method, path, err)
	}
	req.SetBasicAuth(r.user, r.password)
	req.Header.Set("Accept", "application/json")
	if payload != nil {
		// Ganeti compares the whole header: no charset parameter.
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("rapi %s %s: no answer within %s: %w", method, path, r.o.Timeout, ctxErr(ctx))
		}
		return nil, fmt.Errorf("rapi %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if v, ok := serverVersion(resp.Header.Get("Server")); ok {
		r.learn(func(f *clusterFacts) { f.version, f.versionKnown = v, true })
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		if ctx.Err() != nil {
			err = ctxErr(ctx)
		}
		return nil, fmt.Errorf("rapi %s %s: reading answer: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		e := &RAPIError{Method: method, Path: path, Status: resp.StatusCode}
		if ae, ok := parseAPIError(b); ok {
			e.Message, e.Explain = ae.Message, ae.Explain
		} else {
			e.Message = http.StatusText(resp.StatusCode)
		}
		return nil, e
	}
	return b, nil
}

// escapePath escapes each segment of a RAPI path.
func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// queryBody is the body of PUT /2/query/<resource>. Ganeti reads the
// filter from "qfilter", and versions before 2.7 from "filter": both carry
// the same filter, as Ganeti's own client sends them.
type queryBody struct {
	Fields  []string `json:"fields"`
	QFilter any      `json:"qfilter,omitempty"`
	Filter  any      `json:"filter,omitempty"`
}

// InstanceFilter is the query filter selecting the instances whose primary
// node is node.
func InstanceFilter(node string) []any { return []any{"=", "pnode", node} }

// Instances asks the master for the config-only fields of the instances
// whose primary node is node, filtered by the master.
func (r *RAPI) Instances(ctx context.Context, node string) ([]Instance, error) {
	if node == "" {
		return nil, errors.New("rapi: instances: empty node name")
	}
	ctx, cancel := r.run.context(ctx)
	defer cancel()
	f := InstanceFilter(node)
	b, err := r.do(ctx, http.MethodPut, "/2/query/instance", nil, queryBody{Fields: instanceFields, QFilter: f, Filter: f}, true)
	if err != nil {
		return nil, err
	}
	all, sourceKnown, err := parseInstanceQuery(b)
	if err != nil {
		return nil, fmt.Errorf("rapi PUT /2/query/instance: %w", err)
	}
	if len(all) > 0 {
		r.learn(func(f *clusterFacts) {
			f.sourceField = -1
			if sourceKnown {
				f.sourceField = 1
			}
		})
	}
	return checkNames(onNode(all, node))
}

// onNode keeps the instances whose primary node is node (the master
// already filtered; this guards against a server that ignored the filter).
func onNode(all []Instance, node string) []Instance {
	out := all[:0:0]
	for _, in := range all {
		if dnsname.Equal(in.PrimaryNode, node) {
			out = append(out, in)
		}
	}
	return out
}

// Locked asks the master for its locks and returns which of names a job
// holds or waits for. No request is made when names is empty.
func (r *RAPI) Locked(ctx context.Context, names []string) (map[string]bool, error) {
	if len(names) == 0 {
		return map[string]bool{}, nil
	}
	ctx, cancel := r.run.context(ctx)
	defer cancel()
	locks, err := r.queryLocks(ctx, names)
	if err != nil {
		return nil, err
	}
	return LockedInstances(locks, names), nil
}

// LockFilter is the query filter selecting the locks instance/<name> of
// names.
func LockFilter(names []string) []any {
	f := []any{"|"}
	for _, n := range names {
		f = append(f, []any{"=", "name", "instance/" + n})
	}
	return f
}

// queryLocks runs the lock query, filtered to the instance locks of names
// on a cluster known to filter lock queries (Ganeti 2.12 and later), else
// unfiltered: Ganeti 2.9 to 2.11 answer a filter with HTTP 500 and list
// every lock. A filtered query that fails with 400 or 500 is sent once
// more without the filter, and no filter is sent again.
func (r *RAPI) queryLocks(ctx context.Context, names []string) ([]Lock, error) {
	body := queryBody{Fields: lockFields}
	if r.facts().filtersLocks() {
		f := LockFilter(names)
		body.QFilter, body.Filter = f, f
	}
	b, err := r.do(ctx, http.MethodPut, "/2/query/lock", nil, body, true)
	var re *RAPIError
	if err != nil && body.QFilter != nil && errors.As(err, &re) &&
		(re.Status == http.StatusBadRequest || re.Status == http.StatusInternalServerError) {
		r.learn(func(f *clusterFacts) { f.lockFilterRefused = true })
		b, err = r.do(ctx, http.MethodPut, "/2/query/lock", nil, queryBody{Fields: lockFields}, true)
	}
	if err != nil {
		return nil, err
	}
	locks, err := ParseLockQuery(b)
	if err != nil {
		return nil, fmt.Errorf("rapi PUT /2/query/lock: %w", err)
	}
	return locks, nil
}

// shutdownBody is the body of PUT /2/instances/<name>/shutdown.
type shutdownBody struct {
	Timeout          int    `json:"timeout"`
	AdminStateSource string `json:"admin_state_source,omitempty"`
}

// MarkDown submits Ganeti's instance shutdown (never retried), with the
// reason in the query string where Ganeti reads it, then waits for the job
// bounded by Timeout.
func (r *RAPI) MarkDown(ctx context.Context, req MarkDownRequest) (Job, error) {
	ctx, cancel := r.run.context(ctx)
	defer cancel()
	secs, err := shutdownSeconds(r.o.ShutdownTimeout)
	if err != nil {
		return Job{}, err
	}
	body := shutdownBody{Timeout: secs}
	// Never to a Ganeti without the parameter (before 2.11.2), which
	// would refuse the whole shutdown with HTTP 400.
	if req.UserSource && r.learnVersion(ctx).acceptsAdminStateSource() {
		body.AdminStateSource = "user"
	}
	return r.submit(ctx, "mark down", req.Name, "shutdown", reasonText(req.Reason, markDownReason), body)
}

// StartUp submits Ganeti's instance startup (PUT
// /2/instances/<name>/startup, never retried) with the reason in the
// query string, then waits for the job bounded by Timeout. The startup
// resource reads no body (every version from 2.9 to 3.0 builds the opcode
// from the path and query arguments only), so none is sent.
func (r *RAPI) StartUp(ctx context.Context, req StartUpRequest) (Job, error) {
	ctx, cancel := r.run.context(ctx)
	defer cancel()
	return r.submit(ctx, "start", req.Name, "startup", reasonText(req.Reason, startUpReason), nil)
}

// submit sends PUT /2/instances/<name>/<verb>?reason=… with body (nil:
// none) and waits for the job. what names the action in errors.
func (r *RAPI) submit(ctx context.Context, what, name, verb, reason string, body any) (Job, error) {
	if err := dnsname.Check(name); err != nil {
		return Job{}, fmt.Errorf("rapi: %s: bad instance name: %w", what, err)
	}
	path := "/2/instances/" + name + "/" + verb
	b, err := r.do(ctx, http.MethodPut, path, url.Values{"reason": {reason}}, body, false)
	if err != nil {
		var re *RAPIError
		if errors.As(err, &re) && re.Status == http.StatusNotFound {
			return Job{}, fmt.Errorf("%s %s: %w (%v)", what, name, ErrInstanceGone, err)
		}
		return Job{}, fmt.Errorf("%s %s: %w", what, name, err)
	}
	id, err := ParseJobID(b)
	if err != nil {
		return Job{}, fmt.Errorf("%s %s: rapi PUT %s: %w", what, name, path, err)
	}
	return r.waitJob(ctx, what, name, id)
}

// waitJob polls GET /2/jobs/<id> until the job finishes or Timeout passes.
//
// A job still queued or waiting for locks may be about to act on an
// instance that another job holds, typically one that starts or reboots
// it: when it finally runs, the domain may be running again, and Ganeti's
// shutdown would stop it. Such a job is cancelled (DELETE /2/jobs/<id>)
// as soon as it waits and the lock query shows instance/<name> owned by
// another job, or once it has not started within QueueGrace, and the
// mark-down is deferred (ErrJobDeferred). A job that runs is left to
// finish: Ganeti refuses to cancel it anyway.
func (r *RAPI) waitJob(ctx context.Context, what, name string, id int64) (Job, error) {
	ctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	submitted := time.Now()
	job := Job{ID: id, Status: JobQueued}
	path := "/2/jobs/" + strconv.FormatInt(id, 10)
	interval := r.o.PollInterval
	lockChecked, cancelAsked := false, false
	// lastCancel is when a cancel was last refused: it is asked again at
	// most once per QueueGrace.
	var lastCancel time.Time
	for {
		b, err := r.do(ctx, http.MethodGet, path, nil, nil, true)
		if err != nil {
			if ctx.Err() != nil {
				return job, fmt.Errorf("%s %s: job %d still %s: %w (%v)", what, name, id, job.Status, ErrJobUnfinished, ctxErr(ctx))
			}
			return job, fmt.Errorf("%s %s: job %d: %w", what, name, id, err)
		}
		j, gone, err := ParseJob(b)
		if err != nil {
			return job, fmt.Errorf("%s %s: rapi GET %s: %w", what, name, path, err)
		}
		if j.ID != id {
			return job, fmt.Errorf("%s %s: rapi GET %s answered job %d", what, name, path, j.ID)
		}
		job = j
		if JobFinished(job.Status) {
			if cancelAsked && job.Status == JobCanceled {
				return job, fmt.Errorf("%s %s: job %d: %w", what, name, id, ErrJobDeferred)
			}
			return finished(what, name, job, gone)
		}
		if !cancelAsked && notStarted(job.Status) && (lastCancel.IsZero() || time.Since(lastCancel) >= r.o.QueueGrace) {
			why := ""
			// Only a waiting job is blocked on locks; a queued one is
			// usually just about to start (no extra request for it).
			if !lockChecked && job.Status == JobWaiting {
				lockChecked = true
				if other := r.lockOwner(ctx, name, id); other != "" {
					why = "instance/" + name + " is held by " + other
				}
			}
			if why == "" && time.Since(submitted) >= r.o.QueueGrace {
				why = fmt.Sprintf("still %s after %s", job.Status, r.o.QueueGrace)
			}
			if why != "" {
				if err := r.cancelJob(ctx, id); err != nil {
					// Not cancelled: the job runs or will; wait for it
					// at the poll interval, and ask again only after
					// another grace period if it still has not started.
					lastCancel = time.Now()
				} else {
					cancelAsked = true
					interval = r.o.PollInterval
					continue
				}
			}
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return job, fmt.Errorf("%s %s: job %d still %s: %w (%v)", what, name, id, job.Status, ErrJobUnfinished, ctxErr(ctx))
		case <-t.C:
		}
		if interval = interval * 2; interval > time.Second {
			interval = time.Second
		}
	}
}

// notStarted reports a job status of a job that has not started its
// opcode yet: queued, or waiting for its locks.
func notStarted(status string) bool {
	return status == JobQueued || status == JobWaiting
}

// lockOwner returns the id of a job other than self that owns lock
// instance/<name>, or "" (also when the lock query fails: the grace
// period still bounds the wait).
func (r *RAPI) lockOwner(ctx context.Context, name string, self int64) string {
	locks, err := r.queryLocks(ctx, []string{name})
	if err != nil {
		return ""
	}
	return OtherOwner(locks, name, self)
}

// OtherOwner returns the name of a holder of lock instance/<name> other
// than job self, or "". A holder that names no job (another masterd
// thread, a client of the lock daemon) is another holder too.
func OtherOwner(locks []Lock, name string, self int64) string {
	for _, l := range locks {
		if l.Name != "instance/"+name {
			continue
		}
		for _, o := range l.Owners {
			if o.Job != self || o.Job == 0 {
				return o.Name
			}
		}
	}
	return ""
}

// cancelJob asks Ganeti to cancel job id (DELETE /2/jobs/<id>, never
// retried). Ganeti answers [success, message]; success is false when the
// job already runs. Whatever the answer, the caller keeps polling: the
// job's final status says what happened.
func (r *RAPI) cancelJob(ctx context.Context, id int64) error {
	path := "/2/jobs/" + strconv.FormatInt(id, 10)
	b, err := r.do(ctx, http.MethodDelete, path, nil, nil, false)
	if err != nil {
		return err
	}
	ok, msg, err := ParseCancelAnswer(b)
	if err != nil {
		return fmt.Errorf("rapi DELETE %s: %w", path, err)
	}
	if !ok {
		return fmt.Errorf("rapi DELETE %s: not cancelled: %s", path, msg)
	}
	return nil
}

// finished turns a finished job into MarkDown's or StartUp's result.
func finished(what, name string, job Job, gone bool) (Job, error) {
	switch {
	case job.Status == JobSuccess:
		return job, nil
	case gone:
		return job, fmt.Errorf("%s %s: job %d: %w: %s", what, name, job.ID, ErrInstanceGone, job.Error)
	default:
		return job, fmt.Errorf("%s %s: job %d %s: %w: %s", what, name, job.ID, job.Status, ErrJobFailed, job.Error)
	}
}
