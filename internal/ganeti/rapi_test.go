package ganeti

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"ganeti-userdown/testdata/ganetifake"
)

func fakeState() ganetifake.State {
	return ganetifake.State{
		Cluster: ganetifake.ClusterInfo{Name: "cluster.example.com", Master: "node1.example.com"},
		Instances: []ganetifake.Instance{
			{Name: "web1.example.com", PrimaryNode: "node1.example.com", AdminState: "up", Tags: []string{"owner:alice"}},
			{Name: "db1.example.com", PrimaryNode: "node1.example.com", AdminState: "down", AdminStateSource: "user"},
			{Name: "mail1.example.com", PrimaryNode: "node2.example.com", AdminState: "up"},
		},
	}
}

func newRAPI(t *testing.T, f *ganetifake.Server, mod func(*RAPIOptions)) *RAPI {
	t.Helper()
	o := RAPIOptions{URL: f.URL, CAFile: f.CAFile, CredentialsFile: f.WriterCredentials,
		Timeout: 5 * time.Second, ShutdownTimeout: 3 * time.Second, Backoff: 10 * time.Millisecond, PollInterval: 10 * time.Millisecond}
	if mod != nil {
		mod(&o)
	}
	c, err := NewRAPI(o)
	if err != nil {
		t.Fatalf("NewRAPI: %v", err)
	}
	return c
}

// TestRAPIRequests asserts the requests themselves: the instance query
// is filtered to the node on the server and asks only config fields; the
// shutdown carries the reason in the query string, a positive timeout in
// a JSON body with Content-Type application/json exactly.
//
// Reference: design.md, "Decisions": "Cost: ... one config-only query,
// filtered to this node (name, pnode, admin_state, tags; never live fields
// such as oper_state, which make the master contact every node)", and
// "RAPI details that bite".
func TestRAPIRequests(t *testing.T) {
	f := ganetifake.Start(t, fakeState())
	c := newRAPI(t, f, nil)
	ctx := context.Background()
	if _, err := c.Instances(ctx, "node1.example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.MarkDown(ctx, MarkDownRequest{Name: "web1.example.com", Reason: "guest powered off (---s--)"}); err != nil {
		t.Fatal(err)
	}
	reqs := f.Requests()
	if len(reqs) < 3 {
		t.Fatalf("want query, shutdown and job polls, got %+v", reqs)
	}
	var q struct {
		Fields  []string `json:"fields"`
		QFilter []any    `json:"qfilter"`
		Filter  []any    `json:"filter"`
	}
	if err := json.Unmarshal([]byte(reqs[0].Body), &q); err != nil {
		t.Fatalf("query body %q: %v", reqs[0].Body, err)
	}
	want := []any{"=", "pnode", "node1.example.com"}
	if reqs[0].Method != "PUT" || reqs[0].Path != "/2/query/instance" {
		t.Errorf("query sent as %s %s", reqs[0].Method, reqs[0].Path)
	}
	if d := cmp.Diff(want, q.QFilter); d != "" {
		t.Errorf("qfilter (-want +got):\n%s", d)
	}
	if d := cmp.Diff(want, q.Filter); d != "" {
		t.Errorf("filter (-want +got):\n%s", d)
	}
	for _, f := range q.Fields {
		if f == "oper_state" || f == "status" || !map[string]bool{"name": true, "pnode": true, "admin_state": true, "admin_state_source": true, "tags": true}[f] {
			t.Errorf("query asks field %q: only config fields allowed", f)
		}
	}
	sd := reqs[1]
	if sd.Method != "PUT" || sd.Path != "/2/instances/web1.example.com/shutdown" {
		t.Errorf("shutdown sent as %s %s", sd.Method, sd.Path)
	}
	if sd.ContentType != "application/json" {
		t.Errorf("Content-Type %q, want application/json exactly", sd.ContentType)
	}
	if d := cmp.Diff(`{"timeout":3}`, sd.Body); d != "" {
		t.Errorf("shutdown body (-want +got):\n%s", d)
	}
	if !strings.HasPrefix(sd.Query, "reason=") || !strings.Contains(sd.Query, "ganeti-userdown") {
		t.Errorf("reason not in the query string: %q", sd.Query)
	}
	for _, r := range reqs[2:] {
		if r.Method != "GET" || r.Path != "/2/jobs/1" {
			t.Errorf("unexpected request after the shutdown: %+v", r)
		}
	}
	st := f.State()
	if st.Jobs[0].Reason[0].Source != "gnt:user" || !strings.Contains(st.Jobs[0].Reason[0].Text, "guest powered off") {
		t.Errorf("reason trail %+v does not carry the reason", st.Jobs[0].Reason)
	}
}

// TestRAPIStartUpRequest: the startup is PUT
// /2/instances/<name>/startup with the reason in the query string and no
// body (rlib2's R_2_instances_name_startup reads none), then job polls.
func TestRAPIStartUpRequest(t *testing.T) {
	f := ganetifake.Start(t, fakeState())
	c := newRAPI(t, f, nil)
	if _, err := c.StartUp(context.Background(), StartUpRequest{Name: "db1.example.com", Reason: "crash restart"}); err != nil {
		t.Fatal(err)
	}
	reqs := f.Requests()
	su := reqs[0]
	if su.Method != "PUT" || su.Path != "/2/instances/db1.example.com/startup" || su.Body != "" || su.ContentType != "" {
		t.Errorf("startup sent as %+v", su)
	}
	if d := cmp.Diff("reason=ganeti-userdown%3A+crash+restart", su.Query); d != "" {
		t.Errorf("query (-want +got):\n%s", d)
	}
	for _, r := range reqs[1:] {
		if r.Method != "GET" || r.Path != "/2/jobs/1" {
			t.Errorf("unexpected request after the startup: %+v", r)
		}
	}
	if in := f.State().Instances[1]; in.AdminState != "up" {
		t.Errorf("db1 after the start: %+v", in)
	}
}

// TestRAPIUserSource sends admin_state_source only when asked.
func TestRAPIUserSource(t *testing.T) {
	st := fakeState()
	st.Instances[0].Status = "USER_down"
	st.Cluster.UserShutdown = true
	f := ganetifake.Start(t, st)
	c := newRAPI(t, f, nil)
	j, err := c.MarkDown(context.Background(), MarkDownRequest{Name: "web1.example.com", UserSource: true})
	if err != nil {
		t.Fatalf("MarkDown: %+v %v", j, err)
	}
	// The client learns the version first (GET /version: nothing told it
	// yet), then sends the source to this 3.0.2.
	reqs := f.Requests()
	if reqs[0].Path != "/version" || reqs[1].Path != "/2/instances/web1.example.com/shutdown" {
		t.Fatalf("requests %+v", reqs[:2])
	}
	if body := reqs[1].Body; body != `{"timeout":3,"admin_state_source":"user"}` {
		t.Errorf("body %s", body)
	}
	if in := f.State().Instances[0]; in.AdminState != "down" || in.AdminStateSource != "user" {
		t.Errorf("instance after mark-down: %+v", in)
	}
}

// TestRAPIReadsRetriedWritesNot: a 5xx on a read is retried with backoff;
// a 5xx on the shutdown is reported, never sent twice.
func TestRAPIReadsRetriedWritesNot(t *testing.T) {
	f := ganetifake.Start(t, fakeState())
	c := newRAPI(t, f, nil)
	ctx := context.Background()
	f.Update(func(s *ganetifake.State) error { s.Knobs.Fail5xx = 2; return nil })
	got, err := c.Instances(ctx, "node1.example.com")
	if err != nil || len(got) != 2 {
		t.Fatalf("Instances after two 502s: %v %v", got, err)
	}
	if n := len(f.Requests()); n != 3 {
		t.Errorf("%d requests, want 3 (two failures, one success)", n)
	}

	f.ResetRequests()
	f.Update(func(s *ganetifake.State) error { s.Knobs.Fail5xx = 1; s.Knobs.Fail5xxCode = 503; return nil })
	_, err = c.MarkDown(ctx, MarkDownRequest{Name: "web1.example.com"})
	var re *RAPIError
	if !errors.As(err, &re) || re.Status != 503 {
		t.Fatalf("MarkDown with a 503: %v", err)
	}
	if n := len(f.Requests()); n != 1 {
		t.Errorf("shutdown sent %d times, want once", n)
	}
	if len(f.State().Jobs) != 0 {
		t.Errorf("a job was submitted")
	}

	f.ResetRequests()
	f.Update(func(s *ganetifake.State) error { s.Knobs.Fail5xx = 10; s.Knobs.Fail5xxCode = 0; return nil })
	if _, err := c.Locked(ctx, []string{"web1.example.com"}); err == nil {
		t.Fatal("Locked succeeded against a failing server")
	}
	if n := len(f.Requests()); n != 4 {
		t.Errorf("%d lock requests, want 4 (1 + 3 retries)", n)
	}
}

// TestRAPIJobNeverFinishes: the wait for a job is bounded by Timeout and
// reports the job as unfinished with its id.
func TestRAPIJobNeverFinishes(t *testing.T) {
	f := ganetifake.Start(t, fakeState())
	f.Update(func(s *ganetifake.State) error {
		s.Knobs.HangJobs = map[string]bool{"web1.example.com": true}
		return nil
	})
	c := newRAPI(t, f, func(o *RAPIOptions) { o.Timeout = 300 * time.Millisecond })
	start := time.Now()
	j, err := c.MarkDown(context.Background(), MarkDownRequest{Name: "web1.example.com"})
	if !errors.Is(err, ErrJobUnfinished) {
		t.Fatalf("want ErrJobUnfinished, got %v", err)
	}
	if j.ID != 1 || j.Status != "running" {
		t.Errorf("job %+v", j)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("wait took %s, bound is 300ms", el)
	}
}

// TestRAPIRefusedCancelDoesNotSpin: when Ganeti refuses to cancel the
// queued job (it may have left the queue meanwhile), the wait goes on at
// the poll interval, asking for the cancel again at most once per grace
// period, instead of sending GET and DELETE back to back until the
// timeout.
func TestRAPIRefusedCancelDoesNotSpin(t *testing.T) {
	f := ganetifake.Start(t, fakeState())
	f.Update(func(s *ganetifake.State) error {
		s.Knobs.QueueJobs = map[string]bool{"web1.example.com": true}
		s.Knobs.RefuseCancel = true
		return nil
	})
	c := newRAPI(t, f, func(o *RAPIOptions) {
		o.Timeout = 800 * time.Millisecond
		o.QueueGrace = 100 * time.Millisecond
		o.PollInterval = 20 * time.Millisecond
	})
	j, err := c.MarkDown(context.Background(), MarkDownRequest{Name: "web1.example.com"})
	if !errors.Is(err, ErrJobUnfinished) || j.Status != JobQueued {
		t.Fatalf("got %+v, %v; want the job left queued and ErrJobUnfinished", j, err)
	}
	var gets, deletes int
	for _, r := range f.Requests() {
		switch r.Method {
		case "GET":
			gets++
		case "DELETE":
			deletes++
		}
	}
	// 800ms of polls from 20ms doubling to 1s: at most about 6 GETs; one
	// cancel per 100ms grace: at most 8 DELETEs.
	if gets > 10 || deletes > 8 || deletes == 0 {
		t.Errorf("%d GETs and %d DELETEs in 800ms: want a paced wait", gets, deletes)
	}
}

// TestRAPIQueuedJobCancelled: a shutdown job that stays queued (no lock
// owner to see: the master holds it back) is cancelled once QueueGrace
// passes, and does not run when the master would have started it.
//
// Reference: design.md, "Decisions", safety rule 3: "Never mark down an
// instance ... that a Ganeti job holds (instance locks)"; and safety rule
// 2: the mark-down's job is what destroys the user-shut-down domain, so a
// deferred one leaves it alone.
func TestRAPIQueuedJobCancelled(t *testing.T) {
	f := ganetifake.Start(t, fakeState())
	f.Update(func(s *ganetifake.State) error {
		s.Knobs.QueueJobs = map[string]bool{"web1.example.com": true}
		return nil
	})
	c := newRAPI(t, f, func(o *RAPIOptions) { o.QueueGrace = 150 * time.Millisecond })
	start := time.Now()
	j, err := c.MarkDown(context.Background(), MarkDownRequest{Name: "web1.example.com"})
	if !errors.Is(err, ErrJobDeferred) || j.Status != JobCanceled {
		t.Fatalf("got %+v, %v; want a canceled job and ErrJobDeferred", j, err)
	}
	if el := time.Since(start); el < 150*time.Millisecond || el > 3*time.Second {
		t.Errorf("cancelled after %s, want after the 150ms grace", el)
	}
	var deletes []string
	for _, r := range f.Requests() {
		if r.Method == "DELETE" {
			deletes = append(deletes, r.Path)
		}
	}
	if d := cmp.Diff([]string{"/2/jobs/1"}, deletes); d != "" {
		t.Errorf("DELETE requests (-want +got):\n%s", d)
	}
	f.Update(func(s *ganetifake.State) error { s.Knobs.QueueJobs = nil; return nil })
	if err := f.Engine.Schedule(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	st := f.State()
	if st.Instances[0].AdminState != "up" || st.Jobs[0].Status != "canceled" {
		t.Errorf("after the master would start it: web1 admin %s, job %s; want up, canceled", st.Instances[0].AdminState, st.Jobs[0].Status)
	}
}

// TestRAPIRunningJobNotCancelled: a job that already runs is left to
// finish (Ganeti would refuse anyway): no DELETE, however long it runs.
func TestRAPIRunningJobNotCancelled(t *testing.T) {
	f := ganetifake.Start(t, fakeState())
	f.Update(func(s *ganetifake.State) error {
		s.Knobs.HangJobs = map[string]bool{"web1.example.com": true}
		return nil
	})
	c := newRAPI(t, f, func(o *RAPIOptions) { o.Timeout, o.QueueGrace = 400*time.Millisecond, 20*time.Millisecond })
	_, err := c.MarkDown(context.Background(), MarkDownRequest{Name: "web1.example.com"})
	if !errors.Is(err, ErrJobUnfinished) {
		t.Fatalf("want ErrJobUnfinished, got %v", err)
	}
	for _, r := range f.Requests() {
		if r.Method == "DELETE" {
			t.Errorf("running job cancelled: %s %s", r.Method, r.Path)
		}
	}
}

// TestParseCancelAnswer reads Ganeti's [success, message] answers.
func TestParseCancelAnswer(t *testing.T) {
	for _, tc := range []struct {
		body string
		ok   bool
		msg  string
		err  bool
	}{
		{`[true, "Dequeued job 28"]`, true, "Dequeued job 28", false},
		{`[false, "Job no longer waiting, can't cancel (informed it anyway)"]`, false, "Job no longer waiting, can't cancel (informed it anyway)", false},
		{`28`, false, "", true},
		{`["yes", "x"]`, false, "", true},
		{`[true]`, false, "", true},
	} {
		ok, msg, err := ParseCancelAnswer([]byte(tc.body))
		if ok != tc.ok || msg != tc.msg || (err != nil) != tc.err {
			t.Errorf("%s: got %v %q %v", tc.body, ok, msg, err)
		}
	}
}

// TestRAPIErrors: credentials, write access and unknown instances.
func TestRAPIErrors(t *testing.T) {
	f := ganetifake.Start(t, fakeState())
	ctx := context.Background()

	reader := newRAPI(t, f, func(o *RAPIOptions) { o.CredentialsFile = f.ReaderCredentials })
	if _, err := reader.Instances(ctx, "node1.example.com"); err != nil {
		t.Errorf("read-only user cannot query: %v", err)
	}
	_, err := reader.MarkDown(ctx, MarkDownRequest{Name: "web1.example.com"})
	var re *RAPIError
	if !errors.As(err, &re) || re.Status != 403 || !strings.Contains(err.Error(), "write access") {
		t.Errorf("read-only user's shutdown: %v", err)
	}

	bad := filepath.Join(t.TempDir(), "bad.secret")
	os.WriteFile(bad, []byte("rapiwriter wrong\n"), 0o600)
	badc := newRAPI(t, f, func(o *RAPIOptions) { o.CredentialsFile = bad })
	n := len(f.Requests())
	_, err = badc.Instances(ctx, "node1.example.com")
	if !errors.As(err, &re) || re.Status != 401 || !strings.Contains(err.Error(), "rapi_credentials") {
		t.Errorf("wrong password: %v", err)
	}
	if got := len(f.Requests()) - n; got != 1 {
		t.Errorf("a 401 was retried: %d requests", got)
	}

	w := newRAPI(t, f, nil)
	j, err := w.MarkDown(ctx, MarkDownRequest{Name: "gone.example.com"})
	if !errors.Is(err, ErrInstanceGone) {
		t.Errorf("unknown instance (job error): %+v %v", j, err)
	}
	f.Update(func(s *ganetifake.State) error { s.Knobs.NotFound404 = true; return nil })
	if _, err := w.MarkDown(ctx, MarkDownRequest{Name: "gone.example.com"}); !errors.Is(err, ErrInstanceGone) {
		t.Errorf("unknown instance (404): %v", err)
	}
}

// TestRAPICredentialsMode: a credentials file readable by group or others
// is refused before any request, naming the file and its mode.
func TestRAPICredentialsMode(t *testing.T) {
	f := ganetifake.Start(t, fakeState())
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
		p := filepath.Join(t.TempDir(), "userdown-rapi.secret")
		os.WriteFile(p, []byte("rapiwriter writer-secret\n"), 0o600)
		os.Chmod(p, mode)
		_, err := NewRAPI(RAPIOptions{URL: f.URL, CAFile: f.CAFile, CredentialsFile: p})
		if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), octal(mode)) {
			t.Errorf("mode %04o: %v", mode, err)
		}
		if err != nil && strings.Contains(err.Error(), "writer-secret") {
			t.Errorf("error shows the password: %v", err)
		}
	}
	if len(f.Requests()) != 0 {
		t.Errorf("requests were made: %+v", f.Requests())
	}
	for _, content := range []string{"", "rapiwriter\n", "a b c\n", "a b\nc d\n"} {
		p := filepath.Join(t.TempDir(), "s")
		os.WriteFile(p, []byte(content), 0o600)
		if _, _, err := ReadCredentials(p); err == nil {
			t.Errorf("credentials %q accepted", content)
		}
	}
}

func octal(m os.FileMode) string {
	const digits = "01234567"
	p := m.Perm()
	return string([]byte{'0', digits[p>>6&7], digits[p>>3&7], digits[p&7]})
}

// TestRAPIPinning: the server must present the certificate of rapi_ca or
// one it signed; the host name (127.0.0.1 vs ganeti.example.com, no SAN)
// is not checked. Any other certificate is refused and never retried.
func TestRAPIPinning(t *testing.T) {
	ctx := context.Background()
	t.Run("wrong certificate refused", func(t *testing.T) {
		f := ganetifake.Start(t, fakeState())
		other, err := ganetifake.NewCert("ganeti.example.com", false, nil)
		if err != nil {
			t.Fatal(err)
		}
		ca := filepath.Join(t.TempDir(), "rapi.pem")
		os.WriteFile(ca, other.PEM, 0o600)
		c := newRAPI(t, f, func(o *RAPIOptions) { o.CAFile = ca })
		_, err = c.Instances(ctx, "node1.example.com")
		var pe *PinError
		if !errors.As(err, &pe) {
			t.Fatalf("want a PinError, got %v", err)
		}
		if n := len(f.Requests()); n != 0 {
			t.Errorf("%d requests reached the server", n)
		}
	})
	t.Run("certificate signed by the pinned CA accepted", func(t *testing.T) {
		ca, err := ganetifake.NewCert("userdown test CA", true, nil)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := ganetifake.NewCert("ganeti.example.com", false, ca)
		if err != nil {
			t.Fatal(err)
		}
		f := ganetifake.StartWithCert(t, fakeState(), leaf)
		p := filepath.Join(t.TempDir(), "ca.pem")
		os.WriteFile(p, ca.CertPEM, 0o600)
		c := newRAPI(t, f, func(o *RAPIOptions) { o.CAFile = p })
		if _, err := c.Instances(ctx, "node1.example.com"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ca file without certificate", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "rapi.pem")
		os.WriteFile(p, []byte("not pem\n"), 0o600)
		if _, err := LoadPinnedCerts(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("got %v", err)
		}
	})
}

// TestParseBadInput: malformed JSON and unexpected field types are
// refused as a whole (safety rule 4: when cluster state cannot be parsed,
// do nothing).
//
// Reference: design.md, "Decisions", safety rule 4: "When Xen or cluster
// state cannot be read or parsed, do nothing and say so."
func TestParseBadInput(t *testing.T) {
	fields := `"fields": [{"name":"name"},{"name":"pnode"},{"name":"admin_state"},{"name":"admin_state_source"},{"name":"tags"}]`
	row := func(cells string) string { return `{` + fields + `, "data": [[` + cells + `]]}` }
	good := `[0,"a"],[0,"n1"],[0,"up"],[0,"admin"],[0,["t"]]`
	if _, err := ParseInstanceQuery([]byte(row(good))); err != nil {
		t.Fatalf("good row refused: %v", err)
	}
	bad := map[string]string{
		"malformed":                  `{"fields": [`,
		"trailing garbage":           row(good) + `]`,
		"not an object":              `[1,2]`,
		"no data":                    `{` + fields + `}`,
		"missing field":              `{"fields": [{"name":"name"}], "data": []}`,
		"short row":                  `{` + fields + `, "data": [[[0,"a"]]]}`,
		"name not a string":          row(`[0,5],[0,"n1"],[0,"up"],[0,"admin"],[0,[]]`),
		"empty name":                 row(`[0,""],[0,"n1"],[0,"up"],[0,"admin"],[0,[]]`),
		"pnode no data":              row(`[0,"a"],[2,null],[0,"up"],[0,"admin"],[0,[]]`),
		"admin_state unknown value":  row(`[0,"a"],[0,"n1"],[0,"UP"],[0,"admin"],[0,[]]`),
		"admin_state a bool":         row(`[0,"a"],[0,"n1"],[0,true],[0,"admin"],[0,[]]`),
		"tags a string":              row(`[0,"a"],[0,"n1"],[0,"up"],[0,"admin"],[0,"t1,t2"]`),
		"tags unavailable":           row(`[0,"a"],[0,"n1"],[0,"up"],[0,"admin"],[3,null]`),
		"cell not a pair":            row(`"a",[0,"n1"],[0,"up"],[0,"admin"],[0,[]]`),
		"bad result status":          row(`[9,"a"],[0,"n1"],[0,"up"],[0,"admin"],[0,[]]`),
		"admin_state_source numeric": row(`[0,"a"],[0,"n1"],[0,"up"],[0,7],[0,[]]`),
	}
	for name, body := range bad {
		if got, err := ParseInstanceQuery([]byte(body)); err == nil {
			t.Errorf("%s: accepted as %+v", name, got)
		}
	}
	// admin_state_source unknown to older Ganeti: accepted, left empty.
	got, err := ParseInstanceQuery([]byte(row(`[0,"a"],[0,"n1"],[0,"down"],[1,null],[0,null]`)))
	if err != nil || got[0].AdminStateSource != "" || got[0].AdminState != AdminDown {
		t.Errorf("unknown admin_state_source: %+v %v", got, err)
	}

	lockFields := `"fields": [{"name":"name"},{"name":"mode"},{"name":"owner"},{"name":"pending"}]`
	for name, body := range map[string]string{
		"owner a string":  `{` + lockFields + `, "data": [[[0,"instance/a"],[0,"exclusive"],[0,"27"],[0,[]]]]}`,
		"pending flat":    `{` + lockFields + `, "data": [[[0,"instance/a"],[0,"exclusive"],[0,["27"]],[0,["28"]]]]}`,
		"mode a number":   `{` + lockFields + `, "data": [[[0,"instance/a"],[0,1],[0,["27"]],[0,[]]]]}`,
		"owner empty":     `{` + lockFields + `, "data": [[[0,"instance/a"],[0,"shared"],[0,[""]],[0,[]]]]}`,
		"owner an object": `{` + lockFields + `, "data": [[[0,"instance/a"],[0,"shared"],[0,[{}]],[0,[]]]]}`,
		"owner unknown":   `{` + lockFields + `, "data": [[[0,"instance/a"],[0,"shared"],[1,null],[0,[]]]]}`,
	} {
		if got, err := ParseLockQuery([]byte(body)); err == nil {
			t.Errorf("lock %s: accepted as %+v", name, got)
		}
	}
	for name, body := range map[string]string{
		"malformed":      `{"id": 1, "status": `,
		"no status":      `{"id": 1}`,
		"unknown status": `{"id": 1, "status": "done"}`,
		"id not a job":   `{"id": "x", "status": "success"}`,
		"status number":  `{"id": 1, "status": 3}`,
	} {
		if got, _, err := ParseJob([]byte(body)); err == nil {
			t.Errorf("job %s: accepted as %+v", name, got)
		}
	}
	for _, body := range []string{``, `"abc"`, `{"id": 1}`, `-3`, `26 27`} {
		if id, err := ParseJobID([]byte(body)); err == nil {
			t.Errorf("job id %q accepted as %d", body, id)
		}
	}
	if id, err := ParseJobID([]byte("\"26\"\n")); err != nil || id != 26 {
		t.Errorf("string job id: %d %v", id, err)
	}
}

// TestNewRAPIOptions: shutdown timeouts of 0 or fractions are refused
// (0 means "no timeout" to Ganeti 3.x and "destroy at once" to 2.9).
//
// Reference: design.md, "Decisions": "with a short *positive* timeout (0
// means "no timeout" in Ganeti 3.x but "destroy at once" in 2.9)".
func TestNewRAPIOptions(t *testing.T) {
	f := ganetifake.Start(t, fakeState())
	for _, d := range []time.Duration{-time.Second, 500 * time.Millisecond, 1500 * time.Millisecond} {
		if _, err := NewRAPI(RAPIOptions{URL: f.URL, CAFile: f.CAFile, CredentialsFile: f.WriterCredentials, ShutdownTimeout: d}); err == nil {
			t.Errorf("shutdown timeout %s accepted", d)
		}
	}
	for _, u := range []string{"http://node1:5080", "node1:5080", "https://"} {
		if _, err := NewRAPI(RAPIOptions{URL: u, CAFile: f.CAFile, CredentialsFile: f.WriterCredentials}); err == nil {
			t.Errorf("url %q accepted", u)
		}
	}
}
