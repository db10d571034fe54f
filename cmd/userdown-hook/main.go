// Command userdown-hook is ganeti-userdown's Ganeti instance hook, linked
// as 50-userdown into the hooks directories. Ganeti runs it with no
// arguments and only GANETI_* variables (and PATH); it dispatches on
// GANETI_HOOKS_PATH and GANETI_HOOKS_PHASE as the design's hooks table
// says. A pre phase always exits 0, whatever happens; a post phase exits
// non-zero only for a problem the operator must see.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"ganeti-userdown/internal/cli"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kong"

	"ganeti-userdown/detect"
	"ganeti-userdown/hooks"
	"ganeti-userdown/internal/config"
	"ganeti-userdown/internal/state"
	"ganeti-userdown/internal/version"
	"ganeti-userdown/internal/xen"
)

const description = `Ganeti instance hook of ganeti-userdown.

Install it as /etc/ganeti/hooks/<dir>-{pre,post}.d/50-userdown for the
directories instance-start, instance-stop, instance-reboot,
instance-remove, instance-migrate and instance-failover, and as
instance-add-pre.d/50-userdown (an add has nothing to do afterwards).
Ganeti runs it with no arguments; everything comes from its GANETI_*
environment variables (of the rest of the environment only
$USERDOWN_CONFIG is read):

  instance-start      pre:  the start guard (below), then destroy the
                            instance's preserved dead domain
                      post: rewrite <config_dir>/<instance> and verify the
                            live domain runs with the configured actions
  instance-stop       pre:  the stop guard (below), then record an intent
                            (Ganeti asked for this shutdown); post: clear it
  instance-reboot, -remove
                      pre:  record an intent; post: clear it
  instance-migrate, -failover
                      source node: intent (pre), cleared (post)
                      target node: free memory (pre), rewrite the stored
                            config if there is one (post)
  instance-add        pre:  free memory

"Free memory" destroys only preserved domains that are certainly safe to
destroy without asking the master: dead domains covered by a live intent,
and leftovers named like the coming instance.

It acts only for xen-pvm and xen-hvm instances, only on the node
concerned ([cluster] node, default the host's FQDN), only with
GANETI_HOOKS_VERSION 2.

The start guard: the instance-start pre hook refuses (exit 1, which
aborts Ganeti's job with the message printed) a start that is not forced
of an instance of policy down whose user powered it off and that is not
marked down yet, or that ganeti-userdown marked down less than 10 minutes
ago and that was not started since: Ganeti's watcher restarting it from
a status it read before the mark-down. Repeating a start refused after a
mark-down works; otherwise run, on the instance's primary node,

  userdown-hook --allow-start INSTANCE

which lets the next start of INSTANCE within 10 minutes through, or use
gnt-instance startup --force (for DRBD disks --force also ignores the
secondary node's errors).

The stop guard: the instance-stop pre hook refuses (exit 1) a shutdown
while ganeti-userdown's own mark-down of the instance is in flight and
the powered-off domain it was decided on is no longer what is on this
node (the instance was rebooted or started since): that shutdown is our
stale mark-down, which would stop the running instance. Nothing needs to
be done; an operator's own shutdown refused in those seconds works when
repeated. Anything the guard cannot read lets the shutdown through.

Exit status: a pre phase exits 0 whatever else happens (a failing pre
hook would abort the operator's job), errors are logged; the start
and stop guards' refusals are the exceptions. A post phase exits 1 when an
action failed or the domain runs without the configured actions, 2 on a
usage or configuration error; 0 otherwise.

--env-file replays a saved hook environment (KEY=VALUE lines) instead of
the process environment; --dry-run only prints the decision.`

type flags struct {
	Config  string           `help:"Configuration file (default: $USERDOWN_CONFIG, else /etc/ganeti/userdown.toml). Running as root, the file, its [xen] command and every directory above them must be owned by root and not writable by group or others." placeholder:"PATH"`
	JSON    bool             `name:"json" help:"Print the decision and the outcome of every action as JSON."`
	DryRun  bool             `name:"dry-run" help:"Print the decision; change nothing."`
	EnvFile string           `name:"env-file" placeholder:"PATH" help:"Read the GANETI_* variables from this file (KEY=VALUE lines, as Ganeti hook captures) instead of the environment."`
	Node    string           `name:"node" help:"This node's Ganeti name (default: [cluster] node, else the host's FQDN)."`
	Allow   string           `name:"allow-start" placeholder:"INSTANCE" help:"Let the next start of INSTANCE on this node (its primary) through the start guard, within 10 minutes, and exit."`
	Version kong.VersionFlag `help:"Print the version and exit."`
}

func main() {
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

// report is the --json output.
type report struct {
	Decision hooks.Decision  `json:"decision"`
	Outcomes []hooks.Outcome `json:"outcomes"`
	Error    string          `json:"error,omitempty"`
}

func run(args, environ []string, stdout, stderr io.Writer) int {
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("prog", "userdown-hook")
	getenv := func(k string) string {
		for _, kv := range environ {
			if key, v, ok := strings.Cut(kv, "="); ok && key == k {
				return v
			}
		}
		return ""
	}
	env := hooks.GanetiEnv(environ)
	// Whatever goes wrong, a pre phase (or a phase we cannot read) must
	// not abort Ganeti's job.
	post := func() bool {
		p, err := hooks.ParsePhase(env["GANETI_HOOKS_PHASE"])
		return err == nil && p == hooks.Post
	}
	fail := func(c int) int {
		if post() {
			return c
		}
		return cli.ExitOK
	}

	var c flags
	parsed := cli.Parse("userdown-hook", &c, args, stdout, stderr,
		kong.Description(description), kong.Vars{"version": version.Version})
	if parsed.Done {
		if parsed.Err != nil {
			log.Error("usage: " + parsed.Err.Error())
		}
		if parsed.Code == cli.ExitOK {
			return cli.ExitOK
		}
		return fail(cli.ExitUsage)
	}
	if c.EnvFile != "" {
		e, err := hooks.ReadEnvFile(c.EnvFile)
		if err != nil {
			// The phase is then the process environment's, if any.
			log.Error(err.Error() + "; nothing done")
			return fail(2)
		}
		env = hooks.GanetiEnv(envList(e))
	}

	cfg, err := config.LoadFrom(c.Config, getenv)
	if err != nil {
		log.Error(err.Error())
		return fail(cli.ExitUsage)
	}
	if c.Allow != "" {
		return allowStart(c.Allow, state.Open(cfg.State.Dir), stdout, log)
	}
	node := c.Node
	if node == "" {
		if node, err = cfg.Cluster.NodeName(); err != nil {
			log.Error("this node's name: " + err.Error())
			return fail(cli.ExitUsage)
		}
	}

	d, err := hooks.Plan(env, node)
	if err != nil {
		log.Error("hook environment refused; nothing done", "hook", d.Hook, "phase", d.Phase, "err", err)
		if c.JSON {
			writeJSON(stdout, report{Decision: d, Outcomes: []hooks.Outcome{}, Error: err.Error()})
		}
		return fail(cli.ExitFailed)
	}
	log.Info("decision", "hook", d.Hook, "phase", d.Phase, "instance", d.Instance, "role", d.Role, "why", d.Why)
	if c.DryRun || len(d.Actions) == 0 {
		if c.JSON {
			writeJSON(stdout, report{Decision: d, Outcomes: []hooks.Outcome{}})
		} else {
			fmt.Fprintln(stdout, d.Why)
			if c.DryRun {
				for _, a := range d.Actions {
					fmt.Fprintf(stdout, "would %s %s %s\n", a.Kind, a.Instance, a.Op)
				}
			}
		}
		return cli.ExitOK
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	x := xen.NewClient(xen.Flavour(cfg.Xen.Toolstack), cfg.Xen.Command, cfg.Xen.Timeout.Duration)
	x.SetLogger(log)
	store := state.Open(cfg.State.Dir).WithIntentTTL(cfg.State.IntentTTL.Duration)
	r := &hooks.Runner{
		Xen:           x,
		Intents:       store,
		Records:       store,
		ConfigDir:     cfg.Xen.ConfigDir,
		DefaultPolicy: cfg.Policy.Default,
		Actions:       cfg.Actions.ActionList(),
		IntentTTL:     cfg.State.IntentTTL.Duration,
		DumpDir:       cfg.Crash.DumpDir,
		Keep:          cfg.Crash.Keep,
		Log:           log,
	}
	outcomes := r.Run(ctx, d)
	failed := false
	for _, o := range outcomes {
		failed = failed || o.Failed()
	}
	if msg := hooks.Refused(outcomes); msg != "" {
		// Ganeti shows the hook's stdout, then its stderr, in the
		// job's error: the message comes first, alone on its line.
		if c.JSON {
			writeJSON(stdout, report{Decision: d, Outcomes: outcomes})
		} else {
			fmt.Fprintln(stdout, msg)
		}
		// The log line stays short: Ganeti shows it after the message.
		log.Warn("refused by ganeti-userdown's guard", "hook", d.Hook, "instance", d.Instance)
		// The pre-hook paths that fail: design.md, "The start guard"
		// and "The stop guard".
		return 1
	}
	if c.JSON {
		writeJSON(stdout, report{Decision: d, Outcomes: outcomes})
	} else {
		for _, o := range outcomes {
			switch {
			case o.Problem != "":
				fmt.Fprintln(stdout, "userdown-hook: "+o.Problem)
			case o.Err != nil:
				fmt.Fprintf(stdout, "userdown-hook: %s %s failed: %v\n", o.Action.Kind, o.Action.Instance, o.Err)
			default:
				fmt.Fprintln(stdout, o.Done)
			}
		}
	}
	if failed {
		return fail(cli.ExitFailed)
	}
	return cli.ExitOK
}

// allowStart records an operator's allowance for the next start of
// instance.
func allowStart(instance string, st *state.Store, stdout io.Writer, log *slog.Logger) int {
	if err := hooks.ValidName(instance); err != nil {
		log.Error("--allow-start: " + err.Error())
		return 2
	}
	now := time.Now().UTC()
	a := state.StartAllowance{Instance: instance, Created: now, Expires: now.Add(detect.AllowStartFor)}
	if err := st.AllowStart(a); err != nil {
		log.Error(err.Error())
		return 1
	}
	fmt.Fprintf(stdout, "the next start of %s on this node until %s goes through ganeti-userdown's start guard\n", instance, a.Expires.Format(time.RFC3339))
	return 0
}

func envList(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return out
}

func writeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
