// Package hooks is ganeti-userdown's part in Ganeti's instance hooks: it
// turns the environment Ganeti gives a hook (GANETI_* variables, nothing
// else) into a Decision, a list of actions for this node, and carries those
// actions out.
//
// Plan is pure: it reads only the environment and the node's own name.
// Run performs a plan against the toolstack, the intent store and the
// stored domain configs.
package hooks

import (
	"errors"
	"fmt"
	"strings"

	"ganeti-userdown/detect"
	"ganeti-userdown/internal/dnsname"
)

// Phase is the hook phase: Ganeti runs pre hooks before an operation
// (a failing one aborts it) and post hooks after it succeeded.
type Phase string

// The two phases.
const (
	Pre  Phase = "pre"
	Post Phase = "post"
)

// Role is what this node is to the operation the hook runs for.
type Role string

// Roles. A node that plays none of them (the master, a secondary) does
// nothing.
const (
	RoleNone    Role = ""
	RolePrimary Role = "primary" // the instance's primary node
	RoleSource  Role = "source"  // the node a migrate or failover leaves
	RoleTarget  Role = "target"  // the node a migrate or failover goes to
)

// ActionKind names one thing a hook does.
type ActionKind string

// Action kinds, one per row cell of the design's "Hooks" table.
const (
	// GuardStart refuses a start that would undo a user's poweroff
	// (detect.GuardStart); when it refuses, the actions after it do not
	// run and the pre hook fails, aborting Ganeti's job.
	GuardStart ActionKind = "guard-start"
	// GuardStop refuses ganeti-userdown's own mark-down of an instance
	// whose domain runs again (detect.GuardStop); when it refuses, the
	// actions after it do not run and the pre hook fails, aborting
	// Ganeti's job.
	GuardStop ActionKind = "guard-stop"
	// DestroyDead destroys a preserved dead (shut down or crashed)
	// domain named Instance, re-checked by domid, so that starting the
	// instance is not a no-op.
	DestroyDead ActionKind = "destroy-dead-domain"
	// RewriteConfig sets the configured actions in the stored domain
	// config <config_dir>/<Instance>. Optional: a missing file is fine.
	RewriteConfig ActionKind = "rewrite-config"
	// VerifyActions checks that the live domain Instance runs with the
	// configured actions (preserve).
	VerifyActions ActionKind = "verify-actions"
	// RecordIntent records that Ganeti asked for Op on Instance, so the
	// shutdown that follows is not taken for a user's.
	RecordIntent ActionKind = "record-intent"
	// ClearIntents removes the intents of Op on Instance.
	ClearIntents ActionKind = "clear-intents"
	// FreeMemory destroys the preserved domains of this node that are
	// certainly safe to destroy without asking the master, so the
	// instance Instance that is coming finds its memory free.
	FreeMemory ActionKind = "free-memory"
)

// Action is one step of a plan.
type Action struct {
	Kind     ActionKind `json:"kind"`
	Instance string     `json:"instance"`
	// Op is the operation an intent is about (stop, reboot, remove,
	// migrate, failover); empty for other kinds.
	Op string `json:"op,omitempty"`
	// Optional marks a RewriteConfig whose file may legitimately be
	// absent.
	Optional bool `json:"optional,omitempty"`
	// Start is what the hook environment says of the start a GuardStart
	// is about.
	Start *detect.StartRequest `json:"start,omitempty"`
	// Node is this node, named in a GuardStop's refusal.
	Node string `json:"node,omitempty"`
}

// Decision is what a hook run does on this node, and why: the result of
// Plan.
type Decision struct {
	// Hook is GANETI_HOOKS_PATH, e.g. "instance-start".
	Hook  string `json:"hook"`
	Phase Phase  `json:"phase"`
	// Instance is the instance the operation is about, once validated.
	Instance string `json:"instance,omitempty"`
	// Node is this node's name, as given to Plan.
	Node string `json:"node"`
	Role Role   `json:"role,omitempty"`
	// Actions is empty when there is nothing to do; Why says why.
	Actions []Action `json:"actions"`
	// Why is one line for the log.
	Why string `json:"why"`
}

// HooksVersion is the only hooks interface version this package knows
// (every Ganeti from 2.0 to 3.x sends 2).
const HooksVersion = "2"

// Operations recorded in intents, by hook directory.
var intentOps = map[string]string{
	"instance-stop":     "stop",
	"instance-reboot":   "reboot",
	"instance-remove":   "remove",
	"instance-migrate":  "migrate",
	"instance-failover": "failover",
}

// Errors of Plan, for errors.Is.
var (
	// ErrBadEnv is wrapped by every error about the hook environment.
	ErrBadEnv = errors.New("bad hook environment")
)

// ParsePhase reads GANETI_HOOKS_PHASE, which Ganeti sends as "pre" or
// "post" (older documentation spells them "PRE" and "POST").
func ParsePhase(s string) (Phase, error) {
	switch strings.ToLower(s) {
	case "pre":
		return Pre, nil
	case "post":
		return Post, nil
	}
	return "", fmt.Errorf("%w: GANETI_HOOKS_PHASE is %s, want pre or post", ErrBadEnv, quoteShort(s))
}

// Plan decides what the hook does on node from the GANETI_* variables of
// env (any other variable is ignored). It never fails for a hook that is
// simply not ours (another hook directory, a KVM instance, another node,
// an unknown hooks version): the plan is then empty and Why says so. It
// fails, wrapping ErrBadEnv, when a variable it must use is missing or
// malformed; the returned plan then still carries the phase when it
// could be read, so the caller can pick the exit code the phase requires.
// (The result type is Decision because Go cannot give a function and a
// type the same name.)
func Plan(env map[string]string, node string) (Decision, error) {
	p := Decision{Hook: env["GANETI_HOOKS_PATH"], Node: node, Actions: []Action{}}
	phase, err := ParsePhase(env["GANETI_HOOKS_PHASE"])
	if err != nil {
		return p, err
	}
	p.Phase = phase

	if v := env["GANETI_HOOKS_VERSION"]; v != HooksVersion {
		p.Why = fmt.Sprintf("GANETI_HOOKS_VERSION is %s, this hook knows only version %s: doing nothing", quoteShort(v), HooksVersion)
		return p, nil
	}
	if !validToken(p.Hook) {
		return p, fmt.Errorf("%w: GANETI_HOOKS_PATH is %s", ErrBadEnv, quoteShort(p.Hook))
	}
	switch p.Hook {
	case "instance-start", "instance-stop", "instance-reboot", "instance-remove",
		"instance-migrate", "instance-failover", "instance-add":
	default:
		p.Why = fmt.Sprintf("hook %s: nothing to do", p.Hook)
		return p, nil
	}

	switch hv := env["GANETI_INSTANCE_HYPERVISOR"]; hv {
	case "xen-pvm", "xen-hvm":
	case "":
		p.Why = "GANETI_INSTANCE_HYPERVISOR is not set: not a Xen instance as far as this hook can tell, doing nothing"
		return p, nil
	default:
		p.Why = fmt.Sprintf("hypervisor %s is not Xen: nothing to do", quoteShort(hv))
		return p, nil
	}

	name := env["GANETI_INSTANCE_NAME"]
	if err := ValidName(name); err != nil {
		return p, fmt.Errorf("%w: GANETI_INSTANCE_NAME: %v", ErrBadEnv, err)
	}
	if err := ValidName(node); err != nil {
		return p, fmt.Errorf("%w: this node's name: %v", ErrBadEnv, err)
	}

	p.Role = role(env, p.Hook, node)
	if p.Role == RoleNone {
		p.Why = fmt.Sprintf("%s is not the node concerned by %s of %s: nothing to do", node, p.Hook, name)
		return p, nil
	}
	p.Instance = name
	p.Actions = actions(p.Hook, p.Phase, p.Role, name)
	for i := range p.Actions {
		switch p.Actions[i].Kind {
		case GuardStart:
			p.Actions[i].Start = startRequest(env, name, node)
		case GuardStop:
			p.Actions[i].Node = node
		}
	}
	if len(p.Actions) == 0 {
		p.Why = fmt.Sprintf("%s %s on the %s node of %s: nothing to do", p.Hook, p.Phase, p.Role, name)
	} else {
		kinds := make([]string, len(p.Actions))
		for i, a := range p.Actions {
			kinds[i] = string(a.Kind)
		}
		p.Why = fmt.Sprintf("%s %s on the %s node of %s: %s", p.Hook, p.Phase, p.Role, name, strings.Join(kinds, ", "))
	}
	return p, nil
}

// role finds what node is to the operation. The variables without the
// POST_ prefix are used in both phases: Ganeti passes the pre-operation
// values in every version, while the GANETI_POST_* copies are recomputed
// after the operation (after a migration GANETI_POST_OLD_PRIMARY already
// names the new node) and absent before Ganeti 2.5.
func role(env map[string]string, hook, node string) Role {
	switch hook {
	case "instance-migrate", "instance-failover":
		// Ganeti 2.2 and later name both ends; older versions only
		// have the primary (the source) and the secondary (the
		// target, mirrored disk templates being the only ones that
		// could move).
		source := env["GANETI_OLD_PRIMARY"]
		if source == "" {
			source = env["GANETI_INSTANCE_PRIMARY"]
		}
		target := env["GANETI_NEW_PRIMARY"]
		if target == "" {
			if f := strings.Fields(env["GANETI_INSTANCE_SECONDARIES"]); len(f) > 0 {
				target = f[0]
			}
		}
		switch {
		case dnsname.Equal(source, node):
			return RoleSource
		case dnsname.Equal(target, node):
			return RoleTarget
		}
	default:
		if dnsname.Equal(env["GANETI_INSTANCE_PRIMARY"], node) {
			return RolePrimary
		}
	}
	return RoleNone
}

// actions is the design's "Hooks" table.
func actions(hook string, phase Phase, r Role, name string) []Action {
	out := []Action{}
	switch {
	case hook == "instance-start" && r == RolePrimary && phase == Pre:
		out = append(out, Action{Kind: GuardStart, Instance: name}, Action{Kind: DestroyDead, Instance: name})
	case hook == "instance-start" && r == RolePrimary && phase == Post:
		out = append(out, Action{Kind: RewriteConfig, Instance: name}, Action{Kind: VerifyActions, Instance: name})
	case hook == "instance-stop" && r == RolePrimary && phase == Pre:
		out = append(out, Action{Kind: GuardStop, Instance: name}, Action{Kind: RecordIntent, Instance: name, Op: intentOps[hook]})
	case hook == "instance-add" && r == RolePrimary && phase == Pre:
		out = append(out, Action{Kind: FreeMemory, Instance: name})
	case hook == "instance-add":
		// post: nothing; the instance's start goes through the shim.
	case (r == RolePrimary || r == RoleSource) && phase == Pre:
		out = append(out, Action{Kind: RecordIntent, Instance: name, Op: intentOps[hook]})
	case (r == RolePrimary || r == RoleSource) && phase == Post:
		out = append(out, Action{Kind: ClearIntents, Instance: name, Op: intentOps[hook]})
	case r == RoleTarget && phase == Pre:
		out = append(out, Action{Kind: FreeMemory, Instance: name})
	case r == RoleTarget && phase == Post:
		// Migrations reuse the stored config: keep the target's on
		// preserve too. Ganeti writes it only when it starts or
		// receives the instance, hence optional.
		out = append(out, Action{Kind: RewriteConfig, Instance: name, Optional: true})
	}
	return out
}

// startRequest reads what the start guard needs from an instance-start
// environment. GANETI_FORCE is "True" or "False" in every Ganeti from 2.0
// to 3.0 (Python's str of the opcode's force); anything else counts as not
// forced. GANETI_INSTANCE_TAGS is space-separated; when it is absent the
// tags are unknown (nil) and the default policy applies.
func startRequest(env map[string]string, name, node string) *detect.StartRequest {
	rq := &detect.StartRequest{
		Instance:     name,
		Node:         node,
		Forced:       env["GANETI_FORCE"] == "True",
		AdminState:   env["GANETI_INSTANCE_STATUS"],
		DiskTemplate: env["GANETI_INSTANCE_DISK_TEMPLATE"],
	}
	if tags, ok := env["GANETI_INSTANCE_TAGS"]; ok {
		rq.Tags = strings.Fields(tags)
	}
	return rq
}

// MaxNameLen is the longest DNS name.
const MaxNameLen = dnsname.MaxLen

// ValidName reports whether s can be a Ganeti instance or node name (see
// dnsname.Check, which the Ganeti client uses on the cluster's answers
// too).
func ValidName(s string) error { return dnsname.Check(s) }

// validToken accepts hook directory names: lower-case letters, digits and
// '-' (what Ganeti's HPATH constants are made of).
func validToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// quoteShort quotes a value for a message, cut to a readable length.
func quoteShort(s string) string {
	const max = 80
	if len(s) > max {
		return fmt.Sprintf("%q... (%d bytes)", s[:max], len(s))
	}
	return fmt.Sprintf("%q", s)
}
