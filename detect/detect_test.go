package detect

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"ganeti-userdown/internal/ganeti"
	"ganeti-userdown/internal/state"
	"ganeti-userdown/internal/xen"
	"ganeti-userdown/internal/xen/xentest"
)

const node = "node1.example.com"

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// The state columns of the design's "Xen facts" table, decoded by the
// real parser.
var (
	stRunning   = xentest.MustState(xen.XL, "r-----")
	stBlocked   = xentest.MustState(xen.XL, "-b----")
	stPaused    = xentest.MustState(xen.XL, "--p---")
	stPoweroff  = xentest.MustState(xen.XL, "---s--")
	stCrash     = xentest.MustState(xen.XL, "---sc-")
	stXMCrash   = xentest.MustState(xen.XM, "----c-")
	stWatchdog  = xentest.MustState(xen.XL, "---sw-")
	stSuspend   = xentest.MustState(xen.XL, "---ss-")
	stReboot    = xentest.MustState(xen.XL, "---sr-")
	stSoftReset = xentest.MustState(xen.XL, "---sS-")
	stUnknown   = xentest.MustState(xen.XL, "---s?-")
	stDying     = xentest.MustState(xen.XL, "---s-d")
	stDyingOnly = xentest.MustState(xen.XL, "-----d")
)

func uuidOf(name string) string { return "uuid-" + name }

func domain(name string, id int, st xen.State) xen.Domain {
	return xen.Domain{Name: name, ID: id, UUID: uuidOf(name), State: st}
}

func dom0() xen.Domain {
	return xen.Domain{Name: "Domain-0", ID: 0, UUID: "00000000-0000-0000-0000-000000000000", State: stRunning}
}

func instance(name string, admin ganeti.AdminState, tags ...string) ganeti.Instance {
	return ganeti.Instance{Name: name, PrimaryNode: node, AdminState: admin, Tags: tags}
}

// decision builds the expected decision for domain d.
func decision(d xen.Domain, admin ganeti.AdminState, policy string, k Kind, why string) Decision {
	return Decision{Name: d.Name, DomID: d.ID, UUID: d.UUID, State: d.State.Letters, Reason: d.State.Reason,
		AdminState: admin, Policy: policy, Decision: k, Why: why}
}

func withUserSource(d Decision) Decision { d.UserSource = true; return d }
func withDump(d Decision) Decision       { d.DumpCore = true; return d }

func base(domains []xen.Domain, instances ...ganeti.Instance) Input {
	return Input{
		Node: node, Flavour: xen.XL, Domains: domains, Queried: true,
		Instances: instances, DefaultPolicy: PolicyDown, Now: now,
	}
}

type row struct {
	name string
	// ref cites the sentence of design.md (or of the decision rules it
	// completes) that the row checks.
	ref  string
	in   Input
	want []Decision
}

// TestDecide covers every row of the design's "Decisions" section and its
// safety rules, one domain situation per row, comparing the full decision
// list (dom0 included).
//
// Reference: design.md, "Decisions": "For every domain on this node,
// exactly one of: running, mark-down, destroy, wait, host-initiated,
// not-ganeti, dom0."
func TestDecide(t *testing.T) {
	var (
		d0      = dom0()
		web     = domain("web1.example.com", 5, stPoweroff)
		webRun  = domain("web1.example.com", 5, stRunning)
		db      = domain("db1.example.com", 6, stCrash)
		other   = domain("scratch", 7, stPoweroff)
		webUp   = instance("web1.example.com", ganeti.AdminUp)
		dbUp    = instance("db1.example.com", ganeti.AdminUp)
		markWeb = decision(web, ganeti.AdminUp, PolicyDown, MarkDown, "powered off by its user, policy down")
	)
	rows := []row{
		{
			name: "all running, no query",
			ref:  `"When no cluster query was needed (every domain runs) every domain is running."`,
			in: Input{Node: node, Flavour: xen.XL, Now: now, DefaultPolicy: PolicyDown,
				Domains: []xen.Domain{d0, webRun, domain("x", 8, stBlocked), domain("y", 9, stPaused), domain("z", 10, stReboot)}},
			want: []Decision{
				decision(d0, "", "", Dom0, "the control domain"),
				decision(webRun, "", "", Running, "running"),
				decision(domain("x", 8, stBlocked), "", "", Running, "running"),
				decision(domain("y", 9, stPaused), "", "", Running, "paused"),
				decision(domain("z", 10, stReboot), "", "", Running, "reboot in flight: Xen starts it again"),
			},
		},
		{
			name: "user poweroff, policy down",
			ref:  `"A user shutdown is a poweroff-shutdown of an instance Ganeti wants up." -> mark-down (user shutdown, policy down)`,
			in:   base([]xen.Domain{d0, web}, webUp),
			want: []Decision{decision(d0, "", "", Dom0, "the control domain"), markWeb},
		},
		{
			name: "user poweroff, cluster user-shutdown on",
			ref:  `"When the cluster's own user-shutdown handling is on ... ours then marks with admin_state_source: user too"`,
			in: func() Input {
				in := base([]xen.Domain{web}, webUp)
				in.UserShutdown = true
				return in
			}(),
			want: []Decision{withUserSource(markWeb)},
		},
		{
			name: "running instance domain",
			ref:  `running: the domain of a Ganeti instance runs`,
			in:   base([]xen.Domain{webRun, db}, webUp, dbUp),
			want: []Decision{
				decision(webRun, ganeti.AdminUp, PolicyDown, Running, "running"),
				decision(db, ganeti.AdminUp, PolicyDown, Destroy, "crashed: destroyed so that Ganeti restarts it"),
			},
		},
		{
			name: "domain without instance",
			ref:  `"not-ganeti (no Ganeti instance of this node has this name: never touched)"`,
			in:   base([]xen.Domain{other, domain("db1.example.com", 6, stCrash)}, webUp),
			want: []Decision{
				decision(other, "", "", NotGaneti, "no Ganeti instance with primary node node1.example.com is named scratch"),
				decision(db, "", "", NotGaneti, "no Ganeti instance with primary node node1.example.com is named db1.example.com"),
			},
		},
		{
			name: "instance of another primary node",
			ref:  `"A domain belongs to an instance only if the names match and the instance's primary node is this node" (a migration target)`,
			in:   base([]xen.Domain{web}, ganeti.Instance{Name: web.Name, PrimaryNode: "node2.example.com", AdminState: ganeti.AdminUp}),
			want: []Decision{decision(web, "", "", NotGaneti, "no Ganeti instance with primary node node1.example.com is named web1.example.com")},
		},
		{
			name: "tag restart",
			ref:  `"instance tag userdown:<policy> overrides"; policy restart -> destroy, the watcher restarts it`,
			in:   base([]xen.Domain{web}, instance(web.Name, ganeti.AdminUp, "owner:bob", "userdown:restart")),
			want: []Decision{decision(web, ganeti.AdminUp, PolicyRestart, Destroy, "powered off by its user, policy restart (tag userdown:restart): the watcher restarts it")},
		},
		{
			name: "tag ignore",
			ref:  `"Policy ignore (tag userdown:ignore): wait, with the policy as why."`,
			in:   base([]xen.Domain{web, db}, instance(web.Name, ganeti.AdminUp, "userdown:ignore"), instance(db.Name, ganeti.AdminDown, "userdown:ignore")),
			want: []Decision{
				decision(web, ganeti.AdminUp, PolicyIgnore, Wait, "policy ignore (tag userdown:ignore)"),
				decision(db, ganeti.AdminDown, PolicyIgnore, Wait, "policy ignore (tag userdown:ignore)"),
			},
		},
		{
			name: "default policy restart, tag down wins",
			ref:  `"default = down | restart | ignore; instance tag userdown:<policy> overrides"`,
			in: func() Input {
				in := base([]xen.Domain{web, domain("b", 8, stPoweroff)}, webUp, instance("b", ganeti.AdminUp, "userdown:down"))
				in.DefaultPolicy = PolicyRestart
				return in
			}(),
			want: []Decision{
				decision(web, ganeti.AdminUp, PolicyRestart, Destroy, "powered off by its user, policy restart: the watcher restarts it"),
				decision(domain("b", 8, stPoweroff), ganeti.AdminUp, PolicyDown, MarkDown, "powered off by its user, policy down (tag userdown:down)"),
			},
		},
		{
			name: "crash of an admin-up instance",
			ref:  `"a watchdog shutdown (sw) or a crash is the guest failing, not its user's will: destroy, so Ganeti restarts it."`,
			in:   base([]xen.Domain{db, domain("w", 8, stWatchdog)}, dbUp, instance("w", ganeti.AdminUp)),
			want: []Decision{
				decision(db, ganeti.AdminUp, PolicyDown, Destroy, "crashed: destroyed so that Ganeti restarts it"),
				decision(domain("w", 8, stWatchdog), ganeti.AdminUp, PolicyDown, Destroy, "stopped by its watchdog: destroyed so that Ganeti restarts it"),
			},
		},
		{
			name: "crash with dump_dir set",
			ref:  `"[crash] dump_dir: when set, dump-core crashed domains here before destroying"`,
			in: func() Input {
				in := base([]xen.Domain{db, domain("w", 8, stWatchdog)}, dbUp, instance("w", ganeti.AdminUp))
				in.DumpCrashes = true
				return in
			}(),
			want: []Decision{
				withDump(decision(db, ganeti.AdminUp, PolicyDown, Destroy, "crashed: destroyed so that Ganeti restarts it")),
				decision(domain("w", 8, stWatchdog), ganeti.AdminUp, PolicyDown, Destroy, "stopped by its watchdog: destroyed so that Ganeti restarts it"),
			},
		},
		{
			name: "xm crash",
			ref:  `"with xm ... ----c- crashed"`,
			in: func() Input {
				in := base([]xen.Domain{domain("db1.example.com", 6, stXMCrash)}, dbUp)
				in.Flavour = xen.XM
				return in
			}(),
			want: []Decision{decision(domain("db1.example.com", 6, stXMCrash), ganeti.AdminUp, PolicyDown, Destroy, "crashed: destroyed so that Ganeti restarts it")},
		},
		{
			name: "admin down and offline instances",
			ref:  `"destroy (safe to destroy now)"; "An offline instance counts as down."`,
			in: base([]xen.Domain{web, db, domain("o", 8, stPoweroff)},
				instance(web.Name, ganeti.AdminDown), instance(db.Name, ganeti.AdminDown), instance("o", ganeti.AdminOffline)),
			want: []Decision{
				decision(web, ganeti.AdminDown, PolicyDown, Destroy, "instance is admin down: the preserved domain may go"),
				decision(db, ganeti.AdminDown, PolicyDown, Destroy, "instance is admin down: the preserved domain may go"),
				decision(domain("o", 8, stPoweroff), ganeti.AdminOffline, PolicyDown, Destroy, "instance is admin offline: the preserved domain may go"),
			},
		},
		{
			name: "operations in flight",
			ref:  `"Suspend (ss) and reboot (sr) are transient states of migration and restart: never act on them." "Soft reset, an unknown reason (?) and dying domains: wait, never act."`,
			in: base([]xen.Domain{
				domain("s", 8, stSuspend), domain("r", 9, stReboot), domain("S", 10, stSoftReset),
				domain("u", 11, stUnknown), domain("d", 12, stDying), domain("dd", 13, stDyingOnly),
			}, instance("s", ganeti.AdminUp), instance("r", ganeti.AdminUp), instance("S", ganeti.AdminUp),
				instance("u", ganeti.AdminUp), instance("d", ganeti.AdminUp), instance("dd", ganeti.AdminDown)),
			want: []Decision{
				decision(domain("s", 8, stSuspend), ganeti.AdminUp, PolicyDown, Wait, "suspended: a save or migration in flight"),
				decision(domain("r", 9, stReboot), ganeti.AdminUp, PolicyDown, Running, "reboot in flight: Xen starts it again"),
				decision(domain("S", 10, stSoftReset), ganeti.AdminUp, PolicyDown, Wait, "soft reset in flight"),
				decision(domain("u", 11, stUnknown), ganeti.AdminUp, PolicyDown, Wait, "shut down for a reason Xen does not name (---s?-): left alone"),
				decision(domain("d", 12, stDying), ganeti.AdminUp, PolicyDown, Wait, "dying: Xen is already destroying it"),
				decision(domain("dd", 13, stDyingOnly), ganeti.AdminDown, PolicyDown, Wait, "dying: Xen is already destroying it"),
			},
		},
		{
			name: "locked instance",
			ref:  `safety rule 3: "Never mark down an instance ... that a Ganeti job holds (instance locks)." -> "wait (... or a Ganeti job holds the instance)"`,
			in: func() Input {
				in := base([]xen.Domain{web, db}, webUp, instance(db.Name, ganeti.AdminDown))
				in.Locked = map[string]bool{web.Name: true, db.Name: true}
				return in
			}(),
			want: []Decision{
				decision(web, ganeti.AdminUp, PolicyDown, Wait, "a Ganeti job holds instance/web1.example.com"),
				decision(db, ganeti.AdminDown, PolicyDown, Wait, "a Ganeti job holds instance/db1.example.com"),
			},
		},
		{
			name: "intents by instance (hooks) and by uuid (shim)",
			ref:  `safety rule 3: "Never mark down an instance whose shutdown Ganeti or an operator asked for (intents from the shim and the hooks)" -> host-initiated`,
			in: func() Input {
				b := domain("b", 8, stPoweroff)
				in := base([]xen.Domain{web, b, domain("c", 9, stPoweroff)}, webUp, instance("b", ganeti.AdminUp), instance("c", ganeti.AdminUp))
				in.Intents = []state.Intent{
					{Instance: web.Name, Op: "stop", Source: "hook", Created: now.Add(-time.Minute), Expires: now.Add(time.Hour)},
					{UUID: "UUID-B", DomID: 8, Domain: "b", Op: "shutdown", Source: "shim", Created: now.Add(-time.Minute), Expires: now.Add(time.Hour)},
					// Expired, and for another domain's uuid: neither counts.
					{Instance: "c", Op: "stop", Source: "hook", Created: now.Add(-2 * time.Hour), Expires: now.Add(-time.Hour)},
					{UUID: "uuid-gone", Op: "shutdown", Source: "shim", Created: now, Expires: now.Add(time.Hour)},
				}
				return in
			}(),
			want: []Decision{
				decision(web, ganeti.AdminUp, PolicyDown, HostInitiated, "stop asked by Ganeti (hook intent, expires 2026-11-25T13:00:00Z)"),
				decision(domain("b", 8, stPoweroff), ganeti.AdminUp, PolicyDown, HostInitiated, "shutdown asked through the toolstack (shim intent, expires 2026-11-25T13:00:00Z)"),
				decision(domain("c", 9, stPoweroff), ganeti.AdminUp, PolicyDown, MarkDown, "powered off by its user, policy down"),
			},
		},
		{
			name: "an intent covers only the domains it was recorded for",
			ref:  `"State files": "An intent covers only the domains it was recorded for": a Ganeti stop whose post hook never ran does not make a later user poweroff host-initiated`,
			in: func() Input {
				b, c, e := domain("b", 8, stPoweroff), domain("c", 9, stPoweroff), domain("e", 11, stPoweroff)
				in := base([]xen.Domain{web, b, c, e}, webUp, instance("b", ganeti.AdminUp), instance("c", ganeti.AdminUp), instance("e", ganeti.AdminUp))
				in.Intents = []state.Intent{
					// The stop of web's earlier domain 3, never cleared.
					{Instance: web.Name, Listed: true, DomIDs: []int{3}, Op: "stop", Source: "hook", Created: now.Add(-time.Minute), Expires: now.Add(time.Hour)},
					// A stop recorded when b had no domain here.
					{Instance: "b", Listed: true, Op: "stop", Source: "hook", Created: now.Add(-time.Minute), Expires: now.Add(time.Hour)},
					// c's own domain: covered.
					{Instance: "c", Listed: true, DomIDs: []int{9}, Op: "reboot", Source: "hook", Created: now.Add(-time.Minute), Expires: now.Add(time.Hour)},
					// The shim's shutdown of domain 10, whose uuid e's domain 11 kept.
					{UUID: "UUID-E", DomID: 10, Domain: "e", Op: "shutdown", Source: "shim", Created: now.Add(-time.Minute), Expires: now.Add(time.Hour)},
				}
				return in
			}(),
			want: []Decision{
				decision(web, ganeti.AdminUp, PolicyDown, MarkDown, "powered off by its user, policy down"),
				decision(domain("b", 8, stPoweroff), ganeti.AdminUp, PolicyDown, MarkDown, "powered off by its user, policy down"),
				decision(domain("c", 9, stPoweroff), ganeti.AdminUp, PolicyDown, HostInitiated, "reboot asked by Ganeti (hook intent, expires 2026-11-25T13:00:00Z)"),
				decision(domain("e", 11, stPoweroff), ganeti.AdminUp, PolicyDown, MarkDown, "powered off by its user, policy down"),
			},
		},
		{
			name: "an unreadable intent file blocks what its name gives",
			ref:  `"State files": an intent that cannot be read errs towards neither marking down nor destroying (issue 14 #6)`,
			in: func() Input {
				in := base([]xen.Domain{web, domain("b", 8, stPoweroff), domain("c", 9, stPoweroff), domain("d", 10, stCrash)},
					webUp, instance("b", ganeti.AdminUp), instance("c", ganeti.AdminUp), instance("d", ganeti.AdminUp))
				in.UnreadableIntents = []state.IntentKey{
					{Instance: web.Name, Op: "stop"},
					{UUID: "UUID-B", Op: "shutdown"},
					{Instance: "d", Op: "reboot"},
				}
				return in
			}(),
			want: []Decision{
				decision(web, ganeti.AdminUp, PolicyDown, Wait, "a stop intent file for it cannot be read: left alone until it is fixed or intent_ttl passes"),
				decision(domain("b", 8, stPoweroff), ganeti.AdminUp, PolicyDown, Wait, "a shutdown intent file for its uuid cannot be read: left alone until it is fixed or intent_ttl passes"),
				decision(domain("c", 9, stPoweroff), ganeti.AdminUp, PolicyDown, MarkDown, "powered off by its user, policy down"),
				decision(domain("d", 10, stCrash), ganeti.AdminUp, PolicyDown, Wait, "a reboot intent file for it cannot be read: left alone until it is fixed or intent_ttl passes"),
			},
		},
		{
			name: "running domain with an intent stays running",
			ref:  `safety rule 1: "Never destroy a domain that is not shut down or crashed."`,
			in: func() Input {
				in := base([]xen.Domain{webRun}, webUp)
				in.Intents = []state.Intent{{Instance: web.Name, Op: "stop", Source: "hook", Expires: now.Add(time.Hour)}}
				return in
			}(),
			want: []Decision{decision(webRun, ganeti.AdminUp, PolicyDown, Running, "running")},
		},
		{
			name: "xm shutdown not yet observed for settle",
			ref:  `"with xm, ---s-- is shut down (poweroff or a reboot in progress: hence settle)"; "wait (shutdown younger than settle ...)"`,
			in: func() Input {
				a, b, c := domain("a", 8, stPoweroff), domain("b", 9, stPoweroff), domain("c", 10, stPoweroff)
				in := base([]xen.Domain{a, b, c}, instance("a", ganeti.AdminUp), instance("b", ganeti.AdminUp), instance("c", ganeti.AdminDown))
				in.Flavour = xen.XM
				in.Settle = time.Minute
				in.Observations = state.Observe(nil, []xen.Domain{b, c}, now.Add(-30*time.Second))
				return in
			}(),
			want: []Decision{
				decision(domain("a", 8, stPoweroff), ganeti.AdminUp, PolicyDown, Wait, "shutdown first seen now; acting after settle 1m0s"),
				decision(domain("b", 9, stPoweroff), ganeti.AdminUp, PolicyDown, Wait, "shut down for 30s, less than settle 1m0s"),
				decision(domain("c", 10, stPoweroff), ganeti.AdminDown, PolicyDown, Wait, "shut down for 30s, less than settle 1m0s"),
			},
		},
		{
			name: "settle does not delay a crash",
			ref:  `"with xm ... ----c- crashed": unambiguous, so settle (there for poweroff vs reboot) does not apply`,
			in: func() Input {
				c := domain("db1.example.com", 6, stXMCrash)
				in := base([]xen.Domain{c}, dbUp)
				in.Flavour = xen.XM
				in.Settle = time.Minute
				return in
			}(),
			want: []Decision{decision(domain("db1.example.com", 6, stXMCrash), ganeti.AdminUp, PolicyDown, Destroy, "crashed: destroyed so that Ganeti restarts it")},
		},
		{
			name: "xm shutdown observed longer than settle",
			ref:  `"settle: minimum age of a shutdown observation before acting (xm needs it)"`,
			in: func() Input {
				a := domain("a", 8, stPoweroff)
				in := base([]xen.Domain{a}, instance("a", ganeti.AdminUp))
				in.Flavour = xen.XM
				in.Settle = time.Minute
				in.Observations = state.Observe(nil, []xen.Domain{a}, now.Add(-time.Minute))
				return in
			}(),
			want: []Decision{decision(domain("a", 8, stPoweroff), ganeti.AdminUp, PolicyDown, MarkDown, "powered off by its user, policy down")},
		},
		{
			name: "observation of an earlier incarnation does not count",
			ref:  `"a shutdown counts only after it has been observed continuously for settle"`,
			in: func() Input {
				a := domain("a", 8, stPoweroff)
				old := a
				old.ID = 3
				in := base([]xen.Domain{a}, instance("a", ganeti.AdminUp))
				in.Settle = time.Minute
				in.Observations = state.Observe(nil, []xen.Domain{old}, now.Add(-time.Hour))
				return in
			}(),
			want: []Decision{decision(domain("a", 8, stPoweroff), ganeti.AdminUp, PolicyDown, Wait, "shutdown first seen now; acting after settle 1m0s")},
		},
		{
			name: "one name listed twice, one of them running",
			ref:  `"One name listed twice ... the instance is treated as running ... each gets wait with a why naming the anomaly"`,
			in:   base([]xen.Domain{domain("web1.example.com", 5, stPoweroff), domain("web1.example.com", 7, stBlocked)}, webUp),
			want: []Decision{
				decision(domain("web1.example.com", 5, stPoweroff), ganeti.AdminUp, PolicyDown, Wait,
					"the name web1.example.com is listed more than once (also domain 7 (-b----)), which libxl forbids: the instance counts as running, nothing done"),
				decision(domain("web1.example.com", 7, stBlocked), ganeti.AdminUp, PolicyDown, Running, "running"),
			},
		},
		{
			name: "one name listed twice, one rebooting, the other crashed, instance down",
			ref:  `"One name listed twice ... one of them is alive (or in flight)"`,
			in:   base([]xen.Domain{domain("db1.example.com", 6, stCrash), domain("db1.example.com", 8, stReboot)}, instance("db1.example.com", ganeti.AdminDown)),
			want: []Decision{
				decision(domain("db1.example.com", 6, stCrash), ganeti.AdminDown, PolicyDown, Wait,
					"the name db1.example.com is listed more than once (also domain 8 (---sr-)), which libxl forbids: the instance counts as running, nothing done"),
				decision(domain("db1.example.com", 8, stReboot), ganeti.AdminDown, PolicyDown, Running, "reboot in flight: Xen starts it again"),
			},
		},
		{
			name: "one name listed twice, both running",
			ref:  `"One name listed twice": reported on the running domains too`,
			in:   base([]xen.Domain{domain("web1.example.com", 5, stRunning), domain("web1.example.com", 7, stBlocked)}, webUp),
			want: []Decision{
				decision(domain("web1.example.com", 5, stRunning), ganeti.AdminUp, PolicyDown, Running,
					"running; the name web1.example.com is listed more than once (also domain 7 (-b----)), which libxl forbids"),
				decision(domain("web1.example.com", 7, stBlocked), ganeti.AdminUp, PolicyDown, Running,
					"running; the name web1.example.com is listed more than once (also domain 5 (r-----)), which libxl forbids"),
			},
		},
		{
			name: "node name spelled in another case, with a trailing dot",
			ref:  `"Node names": "A node whose FQDN differs from Ganeti's name only in case or a trailing dot is still this node."`,
			in: func() Input {
				in := base([]xen.Domain{web}, webUp)
				in.Node = "Node1.Example.COM."
				return in
			}(),
			want: []Decision{markWeb},
		},
		{
			name: "dead domain but cluster not queried",
			ref:  `safety rule 4: "When Xen or cluster state cannot be read or parsed, do nothing and say so."`,
			in:   Input{Node: node, Flavour: xen.XL, Now: now, DefaultPolicy: PolicyDown, Domains: []xen.Domain{web, domain("d", 12, stDying)}},
			want: []Decision{
				decision(web, "", "", Wait, "shut down, but the cluster was not queried"),
				decision(domain("d", 12, stDying), "", "", Wait, "shut down, but the cluster was not queried"),
			},
		},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			got := Decide(r.in)
			if d := cmp.Diff(r.want, got); d != "" {
				t.Errorf("%s\nDecide (-want +got):\n%s", r.ref, d)
			}
			if len(got) != len(r.in.Domains) {
				t.Errorf("%d decisions for %d domains", len(got), len(r.in.Domains))
			}
		})
	}
}

// Reference: design.md, "Decisions", safety rule 2: "Never destroy a
// user-shut-down domain of an instance that Ganeti still wants up before
// Ganeti has marked it down: the watcher would restart it." Whatever the
// other inputs, a powered-off domain of an admin-up instance under policy
// down is never decided destroy.
func TestNeverDestroyUserShutdownOfAdminUp(t *testing.T) {
	web := domain("web1.example.com", 5, stPoweroff)
	for _, userShutdown := range []bool{false, true} {
		for _, settle := range []time.Duration{0, time.Minute} {
			for _, flavour := range []xen.Flavour{xen.XL, xen.XM} {
				in := base([]xen.Domain{web}, instance(web.Name, ganeti.AdminUp))
				in.UserShutdown, in.Settle, in.Flavour = userShutdown, settle, flavour
				in.Observations = state.Observe(nil, in.Domains, now.Add(-time.Hour))
				for _, d := range Decide(in) {
					if d.Decision == Destroy {
						t.Errorf("%+v: decided destroy for a user shutdown of an admin-up instance", in)
					}
				}
			}
		}
	}
}

func TestNeedsCluster(t *testing.T) {
	tests := []struct {
		name    string
		domains []xen.Domain
		want    bool
	}{
		{"only dom0", []xen.Domain{dom0()}, false},
		{"running, blocked, paused", []xen.Domain{dom0(), domain("a", 1, stRunning), domain("b", 2, stBlocked), domain("c", 3, stPaused)}, false},
		{"reboot and suspend in flight", []xen.Domain{domain("a", 1, stReboot), domain("b", 2, stSuspend)}, false},
		{"a poweroff", []xen.Domain{domain("a", 1, stRunning), domain("b", 2, stPoweroff)}, true},
		{"a crash (xm)", []xen.Domain{domain("b", 2, stXMCrash)}, true},
		{"a dying domain", []xen.Domain{domain("b", 2, stDyingOnly)}, true},
		{"a soft reset in flight", []xen.Domain{domain("b", 2, stSoftReset)}, false},
		{"an unknown reason", []xen.Domain{domain("b", 2, stUnknown)}, true},
	}
	for _, tc := range tests {
		if got := NeedsCluster(tc.domains); got != tc.want {
			t.Errorf("%s: NeedsCluster = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestPolicyFor(t *testing.T) {
	tests := []struct {
		tags       []string
		def        string
		want, note string
	}{
		{nil, PolicyDown, PolicyDown, ""},
		{[]string{"owner:bob"}, PolicyRestart, PolicyRestart, ""},
		{[]string{"userdown:restart"}, PolicyDown, PolicyRestart, " (tag userdown:restart)"},
		{[]string{"userdown:restart", "userdown:ignore"}, PolicyDown, PolicyIgnore, " (tag userdown:ignore; conflicting tags, the most careful wins)"},
		{[]string{"userdown:restart", "userdown:down"}, PolicyRestart, PolicyDown, " (tag userdown:down; conflicting tags, the most careful wins)"},
		{[]string{"userdown:later"}, PolicyDown, PolicyDown, " (unknown tag userdown:later)"},
		{[]string{"userdown:down", "userdown:down"}, PolicyRestart, PolicyDown, " (tag userdown:down)"},
	}
	for _, tc := range tests {
		p, n := PolicyFor(tc.tags, tc.def)
		if p != tc.want || n != tc.note {
			t.Errorf("PolicyFor(%q, %q) = %q, %q; want %q, %q", tc.tags, tc.def, p, n, tc.want, tc.note)
		}
	}
}

func TestToMarkDownAndLockCandidates(t *testing.T) {
	ds := []Decision{
		{Name: "c", Decision: MarkDown}, {Name: "a", Decision: MarkDown}, {Name: "b", Decision: Destroy},
		{Name: "d", Decision: Wait}, {Name: "e", Decision: Running}, {Name: "f", Decision: HostInitiated},
	}
	if d := cmp.Diff([]string{"a", "c"}, ToMarkDown(ds)); d != "" {
		t.Errorf("ToMarkDown (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"a", "b", "c"}, LockCandidates(ds)); d != "" {
		t.Errorf("LockCandidates (-want +got):\n%s", d)
	}
}
