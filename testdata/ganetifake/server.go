package ganetifake

import (
	"bytes"
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
)

// User is a RAPI user; Write grants write access (the "write" option of
// Ganeti's RAPI users file).
type User struct {
	Password string
	Write    bool
}

// Request is one request the RAPI fake received, for assertions.
type Request struct {
	Method      string `json:"method"`
	Path        string `json:"path"`
	Query       string `json:"query,omitempty"`
	Body        string `json:"body,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	User        string `json:"user,omitempty"`
	Status      int    `json:"status"`
}

// Handler is the RAPI fake: every request needs basic auth (Debian runs
// ganeti-rapi with --require-authentication), writes need a user with
// write access, bodies need Content-Type application/json exactly.
type Handler struct {
	Engine *Engine
	Users  map[string]User
	// LogFile, when set, receives each request as a JSON line.
	LogFile string

	mu  sync.Mutex
	log []Request
}

// Requests returns the requests received so far.
func (h *Handler) Requests() []Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Request(nil), h.log...)
}

// ResetRequests forgets the requests received so far.
func (h *Handler) ResetRequests() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.log = nil
}

func (h *Handler) record(r Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.log = append(h.log, r)
	if h.LogFile != "" {
		if b, err := json.Marshal(r); err == nil {
			appendLine(h.LogFile, b)
		}
	}
}

// httpError is Ganeti's error answer.
type httpError struct {
	code    int
	message string
	explain string
}

// Explanations of Ganeti's HTTP server for each status.
var explains = map[int][2]string{
	400: {"Bad Request", "Bad request syntax or unsupported method"},
	401: {"Unauthorized", "No permission -- see authorization schemes"},
	403: {"Forbidden", "Request forbidden -- authorization will not help"},
	404: {"Not Found", "Nothing matches the given URI"},
	415: {"Unsupported Media Type", "Entity body in unsupported format"},
	500: {"Internal Server Error", "Server got itself in trouble"},
	501: {"Not Implemented", "Server does not support this operation"},
	502: {"Bad Gateway", "Invalid responses from another server/proxy"},
	503: {"Service Unavailable", "The server cannot process the request due to a high load"},
	504: {"Gateway Timeout", "The gateway server did not receive a timely response"},
}

func errorOf(code int, message string) *httpError {
	e := explains[code]
	if message == "" {
		message = e[0]
	}
	return &httpError{code: code, message: message, explain: e[1]}
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

// WriteHeader records the status code for the request log.
func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// ServeHTTP answers one RAPI request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	sw := &statusWriter{ResponseWriter: w, status: 200}
	user, _, _ := r.BasicAuth()
	defer func() {
		h.record(Request{
			Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Body: string(body),
			ContentType: r.Header.Get("Content-Type"), User: user, Status: sw.status,
		})
	}()
	prof, server := profiles["3.0"], ""
	if st, err := h.Engine.Store.Snapshot(); err == nil {
		prof, server = mustProfile(st), st.Knobs.ServerHeader
	}
	switch server {
	case "":
		w.Header().Set("Server", "Ganeti "+prof.release)
	case "-":
	default:
		w.Header().Set("Server", server)
	}
	w.Header().Set("Connection", "close")
	result, herr := h.serve(r, body)
	if herr != nil {
		if herr.code == 401 {
			w.Header().Set("WWW-Authenticate", `Basic realm="Ganeti Remote API"`)
		}
		esc := cgiEscaper
		if prof.htmlEscape {
			esc = pyEscaper
		}
		writeJSON(sw, herr.code, map[string]any{
			"code": herr.code, "message": esc.Replace(herr.message), "explain": herr.explain,
		})
		return
	}
	writeJSON(sw, 200, result)
}

// pyEscaper escapes error messages as Ganeti's HTTP server does (Python's
// html.escape): the captures show "doesn&#x27;t".
var pyEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&#x27;")

// cgiEscaper escapes as Ganeti 2.x does (Python 2's cgi.escape): quotes
// are left alone.
var cgiEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func writeJSON(w http.ResponseWriter, code int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(v)
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if err != nil {
		code = 500
		b = []byte(`{"code": 500, "message": "Internal Server Error", "explain": "Server got itself in trouble"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	w.Write(b)
}

func (h *Handler) serve(r *http.Request, body []byte) (any, *httpError) {
	st, err := h.Engine.Store.Snapshot()
	if err != nil {
		return nil, errorOf(500, err.Error())
	}
	prof, err := profileOf(st.Cluster.Version)
	if err != nil {
		return nil, errorOf(500, err.Error())
	}
	if d := st.Knobs.DelayMS; d > 0 {
		t := time.NewTimer(time.Duration(d) * time.Millisecond)
		select {
		case <-r.Context().Done():
			t.Stop()
			return nil, errorOf(504, "")
		case <-t.C:
		}
	}
	if st.Knobs.Fail5xx > 0 {
		code := st.Knobs.Fail5xxCode
		if code == 0 {
			code = 502
		}
		h.Engine.Store.Update(func(s *State) error {
			if s.Knobs.Fail5xx > 0 {
				s.Knobs.Fail5xx--
			}
			return nil
		})
		return nil, errorOf(code, "")
	}

	name, pass, ok := r.BasicAuth()
	u, known := h.Users[name]
	if !ok || !known || u.Password != pass {
		return nil, errorOf(401, "")
	}
	write := r.Method != http.MethodGet && !strings.HasPrefix(r.URL.Path, "/2/query/")
	if write && !u.Write {
		return nil, errorOf(403, "")
	}
	var data any
	if len(body) > 0 {
		if !strings.EqualFold(r.Header.Get("Content-Type"), "application/json") {
			return nil, errorOf(415, "")
		}
		d := json.NewDecoder(bytes.NewReader(body))
		d.UseNumber()
		if err := d.Decode(&data); err != nil {
			return nil, errorOf(400, "Unable to parse JSON data")
		}
	}
	q := r.URL.Query()
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.URL.Path == "/version" && r.Method == http.MethodGet:
		return 2, nil
	case r.URL.Path == "/2/info" && r.Method == http.MethodGet:
		return map[string]any{"software_version": prof.release, "protocol_version": prof.protocol, "name": st.Cluster.Name, "master": st.Cluster.Master}, nil
	case len(segs) == 3 && segs[0] == "2" && segs[1] == "query":
		return h.query(r, segs[2], q, data)
	case len(segs) == 4 && segs[0] == "2" && segs[1] == "instances" && segs[3] == "shutdown":
		if r.Method != http.MethodPut {
			return nil, errorOf(501, "Method "+r.Method+" is unsupported")
		}
		return h.shutdown(segs[2], q, data, st, prof)
	case len(segs) == 4 && segs[0] == "2" && segs[1] == "instances" && segs[3] == "startup":
		if r.Method != http.MethodPut {
			return nil, errorOf(501, "Method "+r.Method+" is unsupported")
		}
		return h.startup(segs[2], q, st)
	case len(segs) == 3 && segs[0] == "2" && segs[1] == "jobs" && r.Method == http.MethodDelete:
		id, err := strconv.ParseInt(segs[2], 10, 64)
		if err != nil {
			return nil, errorOf(400, "Invalid job id")
		}
		if st.Knobs.RefuseCancel {
			return []any{false, fmt.Sprintf("Job %d is no longer waiting in the queue", id)}, nil
		}
		ok, msg, err := h.Engine.Cancel(id)
		if err != nil && prof.pythonQueue {
			return []any{false, fmt.Sprintf("Job %d not found", id)}, nil
		}
		if err != nil {
			return nil, errorOf(502, err.Error())
		}
		return []any{ok, msg}, nil
	case len(segs) == 3 && segs[0] == "2" && segs[1] == "jobs" && r.Method == http.MethodGet:
		id, err := strconv.ParseInt(segs[2], 10, 64)
		if err != nil {
			return nil, errorOf(400, "Invalid job id")
		}
		j := st.job(id)
		if j == nil {
			return nil, errorOf(404, "")
		}
		if j.Status == "canceling" {
			// The job's worker noticed the cancel: it ends now, and this
			// poll saw it canceling.
			h.Engine.FinishCanceling(id)
		}
		return JobJSON(*j, st.instance(j.Instance), prof), nil
	}
	return nil, errorOf(404, "")
}

func (h *Handler) query(r *http.Request, resource string, q url.Values, data any) (any, *httpError) {
	var fields []string
	var qfilter any
	if f := q.Get("fields"); f != "" {
		fields = strings.Split(f, ",")
	}
	switch r.Method {
	case http.MethodGet:
	case http.MethodPut:
		m, ok := data.(map[string]any)
		if !ok {
			return nil, errorOf(400, "Body contents should be dict")
		}
		if raw, ok := m["fields"]; ok {
			l, ok := raw.([]any)
			if !ok {
				return nil, errorOf(400, "Invalid fields")
			}
			fields = nil
			for _, f := range l {
				s, ok := f.(string)
				if !ok {
					return nil, errorOf(400, "Invalid fields")
				}
				fields = append(fields, s)
			}
		}
		qfilter = m["qfilter"]
		if qfilter == nil {
			qfilter = m["filter"]
		}
	default:
		return nil, errorOf(501, "Method "+r.Method+" is unsupported")
	}
	if len(fields) == 0 {
		return nil, errorOf(400, "No fields given")
	}
	var res QueryResult
	var err error
	switch resource {
	case "instance":
		res, err = h.Engine.QueryInstances(r.Context(), fields, qfilter)
	case "lock":
		res, err = h.Engine.QueryLocks(fields, qfilter)
	default:
		return nil, errorOf(404, "")
	}
	var fe *FilterError
	if errors.As(err, &fe) {
		return nil, errorOf(400, fe.Msg)
	}
	var lfe LockFilterError
	if errors.As(err, &lfe) {
		return nil, errorOf(500, lfe.Error())
	}
	if err != nil {
		return nil, errorOf(500, err.Error())
	}
	return res, nil
}

// shutdownParams are the body parameters OpInstanceShutdown accepts.
var shutdownParams = map[string]bool{
	"timeout": true, "admin_state_source": true, "force": true, "ignore_offline_nodes": true,
	"no_remember": true, "dry_run": true, "debug_level": true, "priority": true,
	"depends": true, "comment": true, "reason": true,
}

func (h *Handler) shutdown(name string, q url.Values, data any, st State, prof profile) (any, *httpError) {
	params := map[string]any{}
	if data != nil {
		m, ok := data.(map[string]any)
		if !ok {
			return nil, errorOf(400, "Invalid body contents, not a dictionary")
		}
		params = m
	}
	for k := range params {
		if !shutdownParams[k] || k == "admin_state_source" && !prof.adminStateSource {
			return nil, errorOf(400, fmt.Sprintf("Invalid body parameters: Object OpInstanceShutdown doesn't support the parameter '%s'", k))
		}
	}
	timeout := 120
	if v, ok := params["timeout"]; ok {
		n, ok := v.(json.Number)
		i, err := n.Int64()
		if !ok || err != nil || i < 0 {
			return nil, errorOf(400, "Invalid body parameters: Parameter 'OP_INSTANCE_SHUTDOWN.timeout' fails validation")
		}
		timeout = int(i)
	}
	source := "admin"
	if v, ok := params["admin_state_source"]; ok {
		s, _ := v.(string)
		if s != "admin" && s != "user" {
			return nil, errorOf(400, "Invalid body parameters: Parameter 'OP_INSTANCE_SHUTDOWN.admin_state_source' fails validation")
		}
		source = s
	}
	if st.Knobs.NotFound404 && st.instance(name) == nil {
		return nil, errorOf(404, "")
	}
	dry := q.Get("dry-run") == "1"
	id, err := h.Engine.Submit(name, timeout, source, reasonTrail(q, "instances_name_shutdown"), dry)
	if err != nil {
		return nil, errorOf(500, err.Error())
	}
	return id, nil
}

// startup answers PUT /2/instances/<name>/startup as rlib2's
// R_2_instances_name_startup does: the body is not read (the opcode is
// built from the path and the force, dry-run and no_remember query
// arguments), the reason comes from the query string.
func (h *Handler) startup(name string, q url.Values, st State) (any, *httpError) {
	if st.Knobs.NotFound404 && st.instance(name) == nil {
		return nil, errorOf(404, "")
	}
	id, err := h.Engine.SubmitStartup(name, reasonTrail(q, "instances_name_startup"), q.Get("dry-run") == "1")
	if err != nil {
		return nil, errorOf(500, err.Error())
	}
	return id, nil
}

// reasonTrail is the reason trail RAPI gives a job (lib/rapi/baserlib.py
// OpcodeResource._GetCommonStatic): the ?reason= text as gnt:user, then
// the RAPI operation op.
func reasonTrail(q url.Values, op string) []Reason {
	now := time.Now().UnixNano()
	var reason []Reason
	if txt := q.Get("reason"); txt != "" {
		reason = append(reason, Reason{"gnt:user", txt, now})
	}
	return append(reason, Reason{"gnt:library:rlib2:" + op, "", now})
}
