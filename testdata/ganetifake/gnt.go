package ganetifake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Environment of the gnt-instance and gnt-debug fakes.
const (
	// EnvState names the state file (required), shared with rapi-fake.
	EnvState = "GANETIFAKE_STATE"
	// EnvNode is the node the command runs on; when it is not the
	// cluster's master every query and job fails as on a real non-master.
	EnvNode = "GANETIFAKE_NODE"
	// EnvLog, when set, receives each command line as a JSON line.
	EnvLog = "GANETIFAKE_LOG"
)

// CommandLog is one line of EnvLog.
type CommandLog struct {
	Command string   `json:"command"`
	Args    []string `json:"args"`
}

// gntEnv is what a gnt-* fake runs with.
type gntEnv struct {
	getenv func(string) string
	stdout io.Writer
	stderr io.Writer
	engine *Engine
	state  State
}

func prepare(command string, args []string, getenv func(string) string, stdout, stderr io.Writer) (*gntEnv, int) {
	if p := getenv(EnvLog); p != "" {
		if b, err := json.Marshal(CommandLog{Command: command, Args: args}); err == nil {
			appendLine(p, b)
		}
	}
	path := getenv(EnvState)
	if path == "" {
		fmt.Fprintf(stderr, "%s (ganetifake): %s is not set\n", command, EnvState)
		return nil, 1
	}
	eng := NewEngine(NewFileStore(path), false)
	st, err := eng.Store.Snapshot()
	if err != nil {
		fmt.Fprintf(stderr, "%s (ganetifake): %v\n", command, err)
		return nil, 1
	}
	if node := getenv(EnvNode); node != "" && node != st.Cluster.Master {
		fmt.Fprintf(stderr, "Failure: prerequisites not met for this operation:\nerror type: wrong_input, error details:\nThis is not the master node, please connect to node '%s' and rerun the command\n", st.Cluster.Master)
		return nil, 1
	}
	return &gntEnv{getenv: getenv, stdout: stdout, stderr: stderr, engine: eng, state: st}, 0
}

// listOpts are the options of gnt-instance list and gnt-debug locks.
type listOpts struct {
	noHeaders bool
	separator *string
	output    []string
	filter    bool
	timeout   int
	reason    string
	args      []string
}

func parseOpts(args []string) (listOpts, error) {
	o := listOpts{timeout: 120}
	for i := 0; i < len(args); i++ {
		a := args[i]
		val := func(name string) (string, error) {
			if v, ok := strings.CutPrefix(a, name+"="); ok {
				return v, nil
			}
			if i+1 >= len(args) {
				return "", fmt.Errorf("%s option requires an argument", name)
			}
			i++
			return args[i], nil
		}
		switch {
		case a == "--no-headers":
			o.noHeaders = true
		case a == "--separator" || strings.HasPrefix(a, "--separator="):
			v, err := val("--separator")
			if err != nil {
				return o, err
			}
			o.separator = &v
		case a == "-o" || a == "--output" || strings.HasPrefix(a, "--output="):
			v, err := val(map[bool]string{true: "-o", false: "--output"}[a == "-o"])
			if err != nil {
				return o, err
			}
			o.output = strings.Split(v, ",")
		case a == "-F" || a == "--filter":
			o.filter = true
		case a == "--timeout" || strings.HasPrefix(a, "--timeout="):
			v, err := val("--timeout")
			if err != nil {
				return o, err
			}
			n, err := strconv.Atoi(v)
			if err != nil {
				return o, fmt.Errorf("option --timeout: invalid integer value: '%s'", v)
			}
			o.timeout = n
		case a == "--reason" || strings.HasPrefix(a, "--reason="):
			v, err := val("--reason")
			if err != nil {
				return o, err
			}
			o.reason = v
		case a == "--force" || a == "-f" || a == "--submit":
		case strings.HasPrefix(a, "-") && a != "-":
			return o, fmt.Errorf("no such option: %s", a)
		default:
			o.args = append(o.args, a)
		}
	}
	return o, nil
}

// parseQLang parses the subset of Ganeti's query language the tests use:
// FIELD == "VALUE" and FIELD != "VALUE", joined by "and" or "or".
func parseQLang(s string) (any, error) {
	tokens, err := qlangTokens(s)
	if err != nil {
		return nil, err
	}
	var terms []any
	var joiner string
	for i := 0; i < len(tokens); {
		if i+3 > len(tokens) {
			return nil, fmt.Errorf("incomplete filter %q", s)
		}
		field, op, value := tokens[i], tokens[i+1], tokens[i+2]
		switch op {
		case "==":
			terms = append(terms, []any{"=", field, value})
		case "!=":
			terms = append(terms, []any{"!=", field, value})
		default:
			return nil, fmt.Errorf("unsupported operator %q in filter %q", op, s)
		}
		i += 3
		if i < len(tokens) {
			j := tokens[i]
			if (j != "and" && j != "or") || (joiner != "" && j != joiner) {
				return nil, fmt.Errorf("unsupported filter %q", s)
			}
			joiner = j
			i++
		}
	}
	if len(terms) == 1 {
		return terms[0], nil
	}
	op := "&"
	if joiner == "or" {
		op = "|"
	}
	return append([]any{op}, terms...), nil
}

func qlangTokens(s string) ([]string, error) {
	var out []string
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == ' ' || c == '\t':
			i++
		case c == '"' || c == '\'':
			j := strings.IndexByte(s[i+1:], c)
			if j < 0 {
				return nil, fmt.Errorf("unterminated string in filter %q", s)
			}
			out = append(out, s[i+1:i+1+j])
			i += j + 2
		default:
			j := strings.IndexAny(s[i:], " \t")
			if j < 0 {
				j = len(s) - i
			}
			out = append(out, s[i:i+j])
			i += j
		}
	}
	return out, nil
}

// format renders a value as Ganeti's list commands do.
func format(field string, c [2]any) string {
	switch c[0] {
	case 1:
		return "??"
	case 2:
		return "?"
	case 3:
		return "-"
	case 4:
		return "*"
	}
	switch v := c[1].(type) {
	case bool:
		if v {
			return "Y"
		}
		return "N"
	case []string:
		return strings.Join(v, ",")
	case nil:
		return "-"
	}
	return fmt.Sprint(c[1])
}

// printTable prints rows as Ganeti's FormatTable does: joined by the
// separator when one is given (values are not escaped), else padded
// columns with the last one unpadded.
func printTable(w io.Writer, header []string, rows [][]string, sep *string) {
	if header != nil {
		rows = append([][]string{header}, rows...)
	}
	if sep != nil {
		for _, r := range rows {
			fmt.Fprintln(w, strings.Join(r, *sep))
		}
		return
	}
	if len(rows) == 0 {
		return
	}
	width := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, v := range r {
			width[i] = max(width[i], len(v))
		}
	}
	for _, r := range rows {
		parts := make([]string, len(r))
		for i, v := range r {
			if i == len(r)-1 {
				parts[i] = v
			} else {
				parts[i] = fmt.Sprintf("%-*s", width[i], v)
			}
		}
		fmt.Fprintln(w, strings.Join(parts, " "))
	}
}

// RunGntInstance is the gnt-instance fake: `list`, `shutdown` and
// `startup`.
func RunGntInstance(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	env, code := prepare("gnt-instance", args, getenv, stdout, stderr)
	if env == nil {
		return code
	}
	if len(args) == 0 {
		fmt.Fprintln(stderr, "Usage: gnt-instance {command} [options...] [argument...]")
		return 1
	}
	o, err := parseOpts(args[1:])
	if err != nil {
		fmt.Fprintf(stderr, "Usage: gnt-instance %s\n\ngnt-instance: error: %v\n", args[0], err)
		return 2
	}
	switch args[0] {
	case "list":
		return env.list(o)
	case "shutdown":
		return env.shutdown(o)
	case "startup":
		return env.startup(o)
	}
	fmt.Fprintf(stderr, "gnt-instance (ganetifake): command %q not faked\n", args[0])
	return 1
}

func (env *gntEnv) list(o listOpts) int {
	fields := o.output
	if fields == nil {
		fields = []string{"name", "hypervisor", "pnode", "status"}
	}
	var qfilter any
	switch {
	case o.filter:
		f, err := parseQLang(strings.Join(o.args, " "))
		if err != nil {
			fmt.Fprintf(env.stderr, "Failure: prerequisites not met for this operation:\nerror type: wrong_input, error details:\n%v\n", err)
			return 1
		}
		qfilter = f
	case len(o.args) > 0:
		or := []any{"|"}
		for _, n := range o.args {
			or = append(or, []any{"=", "name", n})
		}
		qfilter = or
	}
	res, err := env.engine.QueryInstances(context.Background(), fields, qfilter)
	if err != nil {
		fmt.Fprintf(env.stderr, "Failure: prerequisites not met for this operation:\nerror type: wrong_input, error details:\n%v\n", err)
		return 1
	}
	var unknown []string
	for _, f := range res.Fields {
		if f.Kind == "unknown" {
			unknown = append(unknown, f.Name)
		}
	}
	if len(unknown) > 0 {
		fmt.Fprintf(env.stderr, "Warning: Unknown output fields selected: %s\n", strings.Join(unknown, ", "))
	}
	var header []string
	if !o.noHeaders {
		for _, f := range res.Fields {
			header = append(header, f.Title)
		}
	}
	rows := make([][]string, len(res.Data))
	for i, r := range res.Data {
		rows[i] = make([]string, len(r))
		for j, c := range r {
			rows[i][j] = format(fields[j], c)
		}
	}
	printTable(env.stdout, header, rows, o.separator)
	if len(unknown) > 0 {
		return 14
	}
	return 0
}

func (env *gntEnv) shutdown(o listOpts) int {
	return env.perInstance(o, "shutdown", func(name string, reason []Reason) (int64, error) {
		if o.timeout < 0 {
			return 0, errors.New("prerequisites not met for this operation:\nerror type: wrong_input, error details:\nParameter 'OP_INSTANCE_SHUTDOWN.timeout' fails validation")
		}
		return env.engine.Submit(name, o.timeout, "admin", reason, false)
	})
}

func (env *gntEnv) startup(o listOpts) int {
	return env.perInstance(o, "startup", func(name string, reason []Reason) (int64, error) {
		return env.engine.SubmitStartup(name, reason, false)
	})
}

// perInstance runs one job per named instance as gnt-instance's
// GenericManyOps does: every name must be known, each job is submitted
// and waited for ("Waiting for job N for NAME ..."), a failed job is
// reported and makes the exit code 1.
func (env *gntEnv) perInstance(o listOpts, verb string, submit func(string, []Reason) (int64, error)) int {
	var names []string
	for _, n := range o.args {
		if env.state.instance(n) != nil {
			names = append(names, n)
		}
	}
	if len(names) == 0 || len(names) != len(o.args) {
		fmt.Fprintln(env.stderr, "Failure: prerequisites not met for this operation:\nerror type: wrong_input, error details:\nSelection filter does not match any instances")
		return 1
	}
	rc := 0
	for _, name := range names {
		now := time.Now().UnixNano()
		var reason []Reason
		if o.reason != "" {
			reason = append(reason, Reason{"gnt:user", o.reason, now})
		}
		reason = append(reason, Reason{"gnt:client:gnt-instance", verb, now})
		id, err := submit(name, reason)
		if err != nil {
			fmt.Fprintf(env.stderr, "Failure: %v\n", err)
			return 1
		}
		fmt.Fprintf(env.stdout, "Waiting for job %d for %s ...\n", id, name)
		j, err := env.wait(id)
		if err != nil {
			fmt.Fprintf(env.stderr, "Failure: %v\n", err)
			return 1
		}
		if j.Status != "success" {
			fmt.Fprintf(env.stderr, "Job %d for %s has failed: %s\n", id, name, formatFailure(j.Result))
			rc = 1
		}
	}
	return rc
}

// wait polls the state file until job id ends, scheduling jobs that were
// waiting for a lock.
func (env *gntEnv) wait(id int64) (Job, error) {
	for {
		st, err := env.engine.Store.Snapshot()
		if err != nil {
			return Job{}, err
		}
		j := st.job(id)
		if j == nil {
			return Job{}, fmt.Errorf("job %d vanished", id)
		}
		if j.Status == "success" || j.Status == "error" || j.Status == "canceled" {
			return *j, nil
		}
		if err := env.engine.Schedule(); err != nil {
			return Job{}, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// formatFailure renders an opcode error as Ganeti's CLI does.
func formatFailure(result json.RawMessage) string {
	var pair []json.RawMessage
	if json.Unmarshal(result, &pair) != nil || len(pair) != 2 {
		return "Failure: unknown error"
	}
	var class string
	json.Unmarshal(pair[0], &class)
	var args []any
	json.Unmarshal(pair[1], &args)
	str := func(i int) string {
		if i < len(args) {
			return fmt.Sprint(args[i])
		}
		return ""
	}
	switch class {
	case "OpPrereqError":
		typ := "wrong_input"
		if len(args) > 1 {
			typ = str(1)
		}
		return fmt.Sprintf("Failure: prerequisites not met for this operation:\nerror type: %s, error details:\n%s", typ, str(0))
	case "OpExecError":
		return "Failure: command execution error:\n" + str(0)
	}
	return fmt.Sprintf("Unhandled Ganeti error: %s", str(0))
}

// RunGntDebug is the gnt-debug fake: `locks`.
func RunGntDebug(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	env, code := prepare("gnt-debug", args, getenv, stdout, stderr)
	if env == nil {
		return code
	}
	if len(args) == 0 || args[0] != "locks" {
		fmt.Fprintln(stderr, "gnt-debug (ganetifake): only `locks` is faked")
		return 1
	}
	o, err := parseOpts(args[1:])
	if err != nil {
		fmt.Fprintf(stderr, "Usage: gnt-debug locks\n\ngnt-debug: error: %v\n", err)
		return 2
	}
	fields := o.output
	if fields == nil {
		fields = []string{"name", "mode", "owner", "pending"}
	}
	res, err := env.engine.QueryLocks(fields, nil)
	if err != nil {
		fmt.Fprintf(stderr, "Failure: %v\n", err)
		return 1
	}
	var header []string
	if !o.noHeaders {
		for _, f := range res.Fields {
			header = append(header, f.Title)
		}
	}
	rows := make([][]string, len(res.Data))
	for i, r := range res.Data {
		rows[i] = make([]string, len(r))
		for j, c := range r {
			rows[i][j] = formatLock(fields[j], c[1])
		}
	}
	printTable(stdout, header, rows, o.separator)
	return 0
}

// formatLock renders lock values as gnt-debug locks does: "-" for none.
func formatLock(field string, v any) string {
	switch x := v.(type) {
	case nil:
		return "-"
	case string:
		return x
	case []string:
		if len(x) == 0 {
			return "-"
		}
		return strings.Join(x, ",")
	case []any: // pending: [[mode, [ids]]]
		if len(x) == 0 {
			return "-"
		}
		var parts []string
		for _, p := range x {
			pp := p.([]any)
			parts = append(parts, fmt.Sprint(pp[0])+":"+strings.Join(pp[1].([]string), ","))
		}
		return strings.Join(parts, ", ")
	}
	return fmt.Sprint(v)
}
