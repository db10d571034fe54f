package main

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"ganeti-userdown/testdata/ganetifake"
)

const (
	node1 = "node1.example.com"
	node2 = "node2.example.com" // the master of the 3.0 cluster (not simulated)
	node3 = "node3.example.com" // the node of the 2.10 cluster
	web1  = "web1.example.com"
	db1   = "db1.example.com"
	app1  = "app1.example.com"
	mail1 = "mail1.example.com"
	mail2 = "mail2.example.com"
)

// delays are the figures of the summary at the end.
type delays struct {
	poweroff, crash, hookRun, old time.Duration
}

func (d *demo) story() {
	cl, err := d.newCluster("cluster.example.com", "3.0", node2, []ganetifake.Instance{
		{Name: web1, PrimaryNode: node1, UUID: "0b2c1d9e-eb01-4c55-9c1e-5f0ad0000001"},
		{Name: db1, PrimaryNode: node1, UUID: "0b2c1d9e-db01-4c55-9c1e-5f0ad0000002"},
		{Name: app1, PrimaryNode: node1, UUID: "0b2c1d9e-a901-4c55-9c1e-5f0ad0000003"},
	})
	if err != nil {
		d.check(false, "start the fake master: %v", err)
		return
	}
	n, err := d.newNode(node1, cl, "1m")
	if err != nil {
		d.check(false, "set up %s: %v", node1, err)
		return
	}
	fmt.Fprintf(d.out, `
The story: %s runs web1, db1 and app1 for a Ganeti 3.0 cluster whose
master is %s. Times are seconds since the story began; paths are shown
as on a node (/etc/xen, /var/lib/ganeti-userdown).
  "$"       what runs, and who runs it
  "|"       what it printed
  "watchd:" what the event daemon logged
  "→"       what ganeti-userdown decided, and why
  "✓"       a check the demo made
`, node1, node2)
	d.start = time.Now()
	var dl delays

	d.shim(n)
	dl.poweroff = d.daemonPoweroff(n)
	dl.crash = d.daemonCrash(n)
	d.ganetiStop(n)
	d.race(n)
	dl.hookRun = d.hookAlone(n)
	dl.old = d.oldCluster()
	d.summary(dl)
}

// 1. The shim.
func (d *demo) shim(n *node) {
	d.chapter("1. The shim: xl create gets preserve",
		"Ganeti writes /etc/xen/<instance> and runs xl create on it at once, with no hook in between. "+
			"Up to 2.10 it writes on_poweroff = 'destroy', and every version writes on_crash = 'restart': "+
			"Xen would destroy a powered-off domain, and the reason with it, and reboot a crashed one. "+
			"The package puts the shim in xl's place (/usr/sbin/xl is a link to userdown-shim): at xl create "+
			"it rewrites both to preserve, then runs the real xl.")
	n.startJob(web1, "operator: gnt-instance startup web1", false)
	n.sh("what xl create was given", "grep", "^on_", filepath.Join(n.etcXen, web1))
	cfg := read(filepath.Join(n.etcXen, web1))
	d.decided("the shim set on_poweroff and on_crash (and on_shutdown) to preserve: a domain that powers off or crashes stays, so its reason can be read")
	d.check(strings.Contains(cfg, "on_poweroff = 'preserve'") && strings.Contains(cfg, "on_crash = 'preserve'"),
		"web1's config has on_poweroff = 'preserve' and on_crash = 'preserve'")
	n.startJob(db1, "operator: gnt-instance startup db1", true)
	n.startJob(app1, "operator: gnt-instance startup app1", true)
	n.xlList()
	n.gntList()
}

// 2. A user's poweroff, with the event daemon.
func (d *demo) daemonPoweroff(n *node) time.Duration {
	d.chapter("2. A user powers web1 off; the event daemon marks it ADMIN_down in seconds",
		"userdown-watchd watches xenstored's @releaseDomain, which fires whenever a domain shuts down, "+
			"crashes or is destroyed. On each event it runs the watcher hook's pipeline over fresh state: "+
			"decide per domain, mark user poweroffs down through Ganeti (and wait for the job), destroy what may go.")
	n.startDaemon()
	t0 := n.guest("web1's user, inside the guest (poweroff)", "poweroff", web1)
	took, ok := n.waitDaemon(t0, 15*time.Second, "marked down "+web1, func() bool {
		return n.cl.adminState(web1) == "down" && n.gone(web1)
	})
	d.decided("web1's domain is preserved powered off (---s--), no intent says Ganeti asked for it, Ganeti wants it up, no job holds it: its user powered it off, so mark it down")
	d.check(ok, "web1 is ADMIN_down and its domain gone %.1fs after the poweroff, with no watcher run", took.Seconds())
	jobs := n.cl.jobs("OP_INSTANCE_SHUTDOWN", web1)
	d.check(len(jobs) == 1 && jobs[0].Status == "success", "one Ganeti shutdown job marked web1 down (job %d)", firstID(jobs))
	if len(jobs) > 0 {
		d.event("job %d's reason in Ganeti's job queue: %s", jobs[0].ID, userdownReason(jobs[0]))
	}
	n.gntList()
	if sum, err := strconv.ParseFloat(n.metric("ganeti_userdown_event_to_mark_down_seconds_sum"), 64); err == nil {
		d.event("the daemon's metrics ([metrics] textfile): %s mark-down(s), %.2fs from event to mark-down",
			n.metric("ganeti_userdown_event_to_mark_down_seconds_count"), sum)
	}
	return took
}

// 3. A crash, with the event daemon.
func (d *demo) daemonCrash(n *node) time.Duration {
	d.chapter("3. db1's kernel panics: dumped, destroyed and started again, in seconds",
		"Stock Xen (on_crash = 'restart') has a crashed guest back in seconds; preserving the crash must not "+
			"cost minutes. The daemon dumps the core ([crash] dump_dir), destroys the domain and starts the "+
			"instance again through Ganeti (a startup job), since Ganeti still wants it up.")
	before := n.domain(db1)
	t0 := n.guest("db1's kernel (panic)", "crash", db1)
	took, ok := n.waitDaemon(t0, 20*time.Second, "started "+db1, func() bool {
		dom, there := n.lookup(db1)
		return there && dom.State.Alive() && dom.ID != before.ID
	})
	d.decided("db1's domain crashed (---sc-) and Ganeti wants db1 up: a guest failure, not a user's wish; dump, destroy, start again")
	d.check(ok, "db1 runs again (domain %d, was %d) %.1fs after the crash", n.domain(db1).ID, before.ID, took.Seconds())
	dumps, _ := filepath.Glob(filepath.Join(n.dumps, db1+".*.core"))
	n.sh("", "ls", n.dumps)
	d.check(len(dumps) == 1, "one core dump of db1 in [crash] dump_dir")
	starts := n.cl.jobs("OP_INSTANCE_STARTUP", db1)
	reason := ""
	if len(starts) > 0 {
		last := starts[len(starts)-1]
		reason = userdownReason(last)
		d.event("job %d (a startup) has the reason: %s", last.ID, reason)
	}
	d.check(reason != "" && n.cl.adminState(db1) == "up", "ganeti-userdown started db1 through Ganeti; db1 stays admin up")
	return took
}

// 4. Ganeti's own stop.
func (d *demo) ganetiStop(n *node) {
	d.chapter("4. The operator stops db1 with Ganeti: an intent, never a mark-down",
		"The instance-stop pre hook records that Ganeti asked for this shutdown (an intent), and so does the shim "+
			"at xl shutdown (by domain uuid). A domain that powers off under a live intent is Ganeti's doing: "+
			"it is never marked down, and may be destroyed at once.")
	d.event("operator: gnt-instance shutdown db1: instance-stop pre hooks")
	n.hook(db1, "instance-stop", "pre", "up", true)
	n.sh("db1's guest will take 2s to power off", n.realXL, "sim", "set", db1, "shutdown-delay=2s")
	t0 := time.Now()
	n.sh("Ganeti's node daemon (no -w, as 2.9.0 and 2.9.1)", n.xl, "shutdown", db1)
	n.sh("the intents", "ls", filepath.Join(n.state, "intents"))
	intents, _ := filepath.Glob(filepath.Join(n.state, "intents", "*.json"))
	d.check(len(intents) >= 2, "the hook recorded an intent for db1 by name, the shim one by domain uuid")
	took, gone := n.waitDaemon(t0, 20*time.Second, "", func() bool { return n.gone(db1) })
	d.decided("db1 powered off under a live intent: Ganeti's own shutdown, not its user's; it may go at once (the shim's reaper or the daemon destroys it, whichever comes first), and it is never marked down")
	d.check(gone && took < 15*time.Second, "db1's domain is gone %.1fs after xl shutdown, not after Ganeti's shutdown timeout", took.Seconds())
	d.check(len(n.cl.jobs("OP_INSTANCE_SHUTDOWN", db1)) == 0, "ganeti-userdown submitted no shutdown job for db1")
	if err := n.cl.setAdmin(db1, "down"); err != nil {
		d.check(false, "mark db1 down: %v", err)
	}
	d.event("Ganeti marks db1 down and runs the instance-stop post hooks")
	n.hook(db1, "instance-stop", "post", "up", true)
	n.gntList()
}

// 5. The multi-node race and the start guard.
func (d *demo) race(n *node) {
	d.chapter("5. The multi-node race: the start guard refuses the watcher's stale restart",
		"The master's watcher reads every instance's status once, then restarts the ERROR_down ones. When a user "+
			"powers off an instance on another node, the master may queue its restart from a status read before "+
			"ganeti-userdown's mark-down; that job would then run right after the mark-down and undo the poweroff. "+
			"The instance-start pre hook on the instance's node refuses such a start.")
	t0 := n.guest("app1's user (poweroff)", "poweroff", app1)
	d.event("%s: ganeti-watcher reads app1 as ERROR_down and queues its restart", node2)
	took, ok := n.waitDaemon(t0, 15*time.Second, "marked down "+app1, func() bool {
		return n.cl.adminState(app1) == "down" && n.gone(app1) && n.cl.idle()
	})
	d.check(ok, "the daemon marked app1 down (%.1fs after the poweroff)", took.Seconds())
	refusal := n.startJob(app1, node2+": the watcher's restart of app1 runs, after the mark-down job", false)
	d.decided("ganeti-userdown marked app1 down moments ago and this start is not forced: the watcher restarting it from an older status; refuse, once")
	d.check(strings.Contains(refusal, "not starting app1.example.com") && n.cl.adminState(app1) == "down" && n.gone(app1),
		"the restart was refused: app1 stays ADMIN_down, its user's poweroff holds")

	d.event("how an operator starts it anyway: what the message says")
	n.startJob(app1, "operator: gnt-instance startup app1, again", true)
	d.check(n.running(app1) && n.cl.adminState(app1) == "up", "the operator's start of app1 went through (the refusal used up the guard's record)")
	n.sh("operator, on web1's node", filepath.Join(d.bin, "userdown-hook"), "--allow-start", web1)
	n.startJob(web1, "operator: gnt-instance startup web1", true)
	d.check(n.running(web1) && n.cl.adminState(web1) == "up", "web1, marked down in step 2, started again after --allow-start")
}

// 6. The watcher hook alone.
func (d *demo) hookAlone(n *node) time.Duration {
	d.chapter("6. Without the daemon: the watcher hook does the same at the next watcher run",
		"The watcher hook (/etc/ganeti/hooks/watcher/50-userdown) runs on every node at every watcher run, "+
			"every 5 minutes, before the restart pass: userdown-detect --mark-down, then userdown-destroy. "+
			"It is enough on its own; the daemon only makes it seconds instead of minutes.")
	d.event("operator on %s: $ systemctl stop userdown-watchd", n.name)
	n.stopDaemon()
	d.check(n.wdCode == 0, "userdown-watchd stopped (exit %d after SIGTERM)", n.wdCode)
	n.showDaemonLog()
	t0 := n.guest("web1's user (poweroff)", "poweroff", web1)
	before := n.domain(app1)
	n.guest("app1's kernel (panic)", "crash", app1)
	n.xlList()
	refusal := n.startJob(web1, node2+": the watcher restarts web1, ERROR_down, before this node's hook ran", false)
	d.decided("web1 is still admin up and its domain is preserved powered off by its user, with no intent: not marked down yet; refuse, and keep the domain")
	d.check(strings.Contains(refusal, "not starting web1.example.com") && n.domain(web1).State.UserPoweredOff(),
		"the restart was refused; web1's preserved domain is kept for the hook to read")
	dec := n.detectJSON()
	d.check(dec[web1] == "mark-down", "userdown-detect decides mark-down for web1")
	n.watcherHook()
	took := time.Since(t0)
	after, ok := n.lookup(app1)
	d.check(n.cl.adminState(web1) == "down" && n.gone(web1), "web1 is ADMIN_down and its domain gone")
	d.check(ok && after.State.Alive() && after.ID != before.ID, "app1 was dumped, destroyed and started again (domain %d, was %d)", after.ID, before.ID)
	n.gntList()
	return took
}

// 7. A Ganeti 2.10 cluster.
func (d *demo) oldCluster() time.Duration {
	cl, err := d.newCluster("old.example.com", "2.10", node3, []ganetifake.Instance{
		{Name: mail1, PrimaryNode: node3, UUID: "0b2c1d9e-0a01-4c55-9c1e-5f0ad0000004"},
		{Name: mail2, PrimaryNode: "node4.example.com", UUID: "0b2c1d9e-0a02-4c55-9c1e-5f0ad0000005"},
	})
	if err != nil {
		d.check(false, "start the 2.10 master: %v", err)
		return 0
	}
	n, err := d.newNode(node3, cl, "1m")
	if err != nil {
		d.check(false, "set up %s: %v", node3, err)
		return 0
	}
	d.chapter("7. A Ganeti 2.10 cluster: locks owned by threads, a mark-down all the same",
		"Ganeti before 2.12 keeps its locks in masterd's threads: the lock query lists every lock, free ones "+
			"too, owners are thread names (Jq<worker>/Job<id>/<opcode>) and it cannot be filtered. "+
			"A job that holds an instance's lock keeps ganeti-userdown off that instance only: unrelated jobs do not stop a mark-down.")
	n.startJob(mail1, "operator: gnt-instance startup mail1", true)
	n.startDaemon()
	verify, err1 := cl.eng.HoldLock("", "OP_CLUSTER_VERIFY_DISKS")
	migrate, err2 := cl.eng.HoldLock(mail2, "OP_INSTANCE_MIGRATE")
	if err1 != nil || err2 != nil {
		d.check(false, "hold the locks: %v %v", err1, err2)
		return 0
	}
	d.event("operator: gnt-cluster verify-disks and gnt-instance migrate mail2 are running")
	n.gnt("gnt-debug", "locks")
	cl.rapi.ResetRequests()
	t0 := n.guest("mail1's user (poweroff)", "poweroff", mail1)
	took, ok := n.waitDaemon(t0, 15*time.Second, "marked down "+mail1, func() bool {
		return cl.adminState(mail1) == "down" && n.gone(mail1)
	})
	d.decided("mail1 is powered off by its user and no job holds mail1 (the cluster lock is held shared, mail2's by another job): mark it down")
	d.check(ok, "mail1 is ADMIN_down and its domain gone %.1fs after the poweroff, while the other jobs run", took.Seconds())
	running := 0
	for _, j := range cl.snapshot().Jobs {
		if (j.ID == verify || j.ID == migrate) && j.Status == "running" {
			running++
		}
	}
	d.check(running == 2, "the verify-disks and migrate jobs were left running")
	d.event("what the daemon asked the 2.10 master (its RAPI requests):")
	asked := true
	reqs := cl.rapi.Requests()
	for i := 0; i < len(reqs); i++ {
		r, same := reqs[i], 1
		for i+1 < len(reqs) && reqs[i+1] == r {
			i, same = i+1, same+1
		}
		line := fmt.Sprintf("%s %s => %d", r.Method, r.Path, r.Status)
		switch {
		case r.Path == "/2/query/lock":
			line += " (every lock: 2.10 refuses a filter)"
			asked = asked && !strings.Contains(r.Body, "qfilter")
		case strings.HasSuffix(r.Path, "/shutdown"):
			line += " " + r.Body
			asked = asked && !strings.Contains(r.Body, "admin_state_source")
		}
		if same > 1 {
			line += fmt.Sprintf(" (%d times)", same)
		}
		asked = asked && r.Status == 200
		d.printed(line)
	}
	d.check(asked, "as 2.10 wants: the lock query unfiltered, the shutdown without admin_state_source (2.11.2 and later)")
	cl.eng.Finish(verify, "success", nil)
	cl.eng.Finish(migrate, "success", nil)
	n.gnt("gnt-instance", "list", "-o", "name,status", mail1)
	n.stopDaemon()
	return took
}

func (d *demo) summary(dl delays) {
	d.chapter("Summary")
	rows := [][2]string{
		{"user poweroff → ADMIN_down, domain gone (userdown-watchd)", fmt.Sprintf("%.1fs", dl.poweroff.Seconds())},
		{"kernel panic → dumped, running again (userdown-watchd)", fmt.Sprintf("%.1fs", dl.crash.Seconds())},
		{"user poweroff → ADMIN_down (watcher hook alone)", fmt.Sprintf("next watcher run, ≤ 5 min (the run: %.1fs)", dl.hookRun.Seconds())},
		{"user poweroff → ADMIN_down on Ganeti 2.10, jobs running", fmt.Sprintf("%.1fs", dl.old.Seconds())},
		{"Ganeti's own stops marked down", "none"},
		{"stale watcher restarts let through", "none (refused by the start guard)"},
	}
	w := 0
	for _, r := range rows {
		w = max(w, len([]rune(r[0])))
	}
	for _, r := range rows {
		fmt.Fprintf(d.out, "  %s%s  %s\n", r[0], strings.Repeat(" ", w-len([]rune(r[0]))), r[1])
	}
}

// userdownReason returns the entry of a job's reason trail that
// ganeti-userdown wrote, or "".
func userdownReason(j ganetifake.Job) string {
	for _, r := range j.Reason {
		if strings.HasPrefix(r.Text, "ganeti-userdown") {
			return r.Text
		}
	}
	return ""
}

func firstID(jobs []ganetifake.Job) int64 {
	if len(jobs) == 0 {
		return 0
	}
	return jobs[0].ID
}
