package hooks

import (
	"errors"
	"ganeti-userdown/detect"
	"ganeti-userdown/internal/testbin"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// capturesDir is where the real Ganeti 3.0.2 hook environments live:
// testdata/ganeti-3.0.2/hooks in the repository.
func capturesDir(t *testing.T) string {
	t.Helper()
	return testbin.Captures(t, "hooks")
}

func fixturesDir(t *testing.T) string {
	return filepath.Join(testbin.ModuleRoot(t), "testdata", "hookenv")
}

func readEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	env, err := ReadEnvFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(env) == 0 {
		t.Fatalf("%s: no variables", path)
	}
	return env
}

type planWant struct {
	role    Role
	actions []Action
}

func act(kind ActionKind, inst, op string) Action {
	return Action{Kind: kind, Instance: inst, Op: op}
}

const xen1 = "xen1.example.com"

// guardXen1 is the start guard's action for xen1's captured starts, with
// the request read from the capture: not forced (GANETI_FORCE=False), the
// admin state before the start, the tags and the disk template.
//
// Reference: design.md, "The start guard".
func guardXen1(status string) Action {
	return Action{Kind: GuardStart, Instance: xen1, Start: &detect.StartRequest{
		Instance: xen1, Node: "NODE1.example.com", AdminState: status, Tags: []string{"owner:bob"}, DiskTemplate: "diskless",
	}}
}

// xenCaptures is what each real capture of a Xen instance must plan on
// its primary node1.example.com.
//
// Reference: design.md, "Hooks": the table (instance-start pre destroys a
// preserved dead domain, post rewrites and verifies; stop, reboot, remove
// record an intent, post clears it; instance-add pre frees memory).
var xenCaptures = map[string]planWant{
	"xen-instance-add--instance-add-pre.d.env":                             {RolePrimary, []Action{act(FreeMemory, xen1, "")}},
	"xen-instance-add--instance-add-post.d.env":                            {RolePrimary, []Action{}},
	"xen-instance-reboot-full--instance-reboot-pre.d.env":                  {RolePrimary, []Action{act(RecordIntent, xen1, "reboot")}},
	"xen-instance-reboot-full--instance-reboot-post.d.env":                 {RolePrimary, []Action{act(ClearIntents, xen1, "reboot")}},
	"xen-instance-reboot-hard--instance-reboot-pre.d.env":                  {RolePrimary, []Action{act(RecordIntent, xen1, "reboot")}},
	"xen-instance-reboot-hard--instance-reboot-post.d.env":                 {RolePrimary, []Action{act(ClearIntents, xen1, "reboot")}},
	"xen-instance-reboot-soft--instance-reboot-pre.d.env":                  {RolePrimary, []Action{act(RecordIntent, xen1, "reboot")}},
	"xen-instance-reboot-soft--instance-reboot-post.d.env":                 {RolePrimary, []Action{act(ClearIntents, xen1, "reboot")}},
	"xen-instance-shutdown--instance-stop-pre.d.env":                       {RolePrimary, []Action{guardStop, act(RecordIntent, xen1, "stop")}},
	"xen-instance-shutdown--instance-stop-post.d.env":                      {RolePrimary, []Action{act(ClearIntents, xen1, "stop")}},
	"xen-instance-shutdown-timeout0--instance-stop-pre.d.env":              {RolePrimary, []Action{guardStop, act(RecordIntent, xen1, "stop")}},
	"xen-instance-shutdown-timeout0--instance-stop-post.d.env":             {RolePrimary, []Action{act(ClearIntents, xen1, "stop")}},
	"xen-shutdown-hung-guest-timeout3--instance-stop-pre.d.env":            {RolePrimary, []Action{guardStop, act(RecordIntent, xen1, "stop")}},
	"xen-shutdown-hung-guest-timeout3--instance-stop-post.d.env":           {RolePrimary, []Action{act(ClearIntents, xen1, "stop")}},
	"xen-watcher-user-shutdown-cleanup--instance-stop-pre.d.env":           {RolePrimary, []Action{guardStop, act(RecordIntent, xen1, "stop")}},
	"xen-watcher-user-shutdown-cleanup--instance-stop-post.d.env":          {RolePrimary, []Action{act(ClearIntents, xen1, "stop")}},
	"xen-instance-startup--instance-start-pre.d.env":                       {RolePrimary, []Action{guardXen1("down"), act(DestroyDead, xen1, "")}},
	"xen-instance-startup--instance-start-post.d.env":                      {RolePrimary, []Action{act(RewriteConfig, xen1, ""), act(VerifyActions, xen1, "")}},
	"xen-instance-startup-after-user-down--instance-start-pre.d.env":       {RolePrimary, []Action{guardXen1("down"), act(DestroyDead, xen1, "")}},
	"xen-instance-startup-after-user-down--instance-start-post.d.env":      {RolePrimary, []Action{act(RewriteConfig, xen1, ""), act(VerifyActions, xen1, "")}},
	"xen-watcher-restart-usershutdown-disabled--instance-start-pre.d.env":  {RolePrimary, []Action{guardXen1("up"), act(DestroyDead, xen1, "")}},
	"xen-watcher-restart-usershutdown-disabled--instance-start-post.d.env": {RolePrimary, []Action{act(RewriteConfig, xen1, ""), act(VerifyActions, xen1, "")}},
}

// guardStop is the stop guard of an instance-stop pre hook on the primary
// (design.md, "Hooks", instance-stop pre; "The stop guard").
var guardStop = Action{Kind: GuardStop, Instance: xen1, Node: "NODE1.example.com"}

// TestPlanRealCaptures plans every real Ganeti 3.0.2 hook environment on
// its primary node, on another node (in upper case, to prove the
// comparison ignores case only) and checks the fake-hypervisor ones do
// nothing.
//
// Reference: design.md, "Hooks": "Act only for xen-pvm/xen-hvm instances
// and only on the node concerned (GANETI_INSTANCE_PRIMARY ...)".
func TestPlanRealCaptures(t *testing.T) {
	dir := capturesDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.env"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no *.env capture in %s", dir)
	}
	seen := map[string]bool{}
	for _, path := range files {
		base := filepath.Base(path)
		t.Run(base, func(t *testing.T) {
			env := readEnv(t, path)
			want, isXen := xenCaptures[base]
			if hv := env["GANETI_INSTANCE_HYPERVISOR"]; isXen != strings.HasPrefix(hv, "xen-") {
				t.Fatalf("capture with hypervisor %q: in the Xen table = %v", hv, isXen)
			}
			seen[base] = true

			p, err := Plan(env, "NODE1.example.com")
			if err != nil {
				t.Fatalf("Plan on the primary: %v", err)
			}
			if !isXen {
				wantWhy := "not Xen"
				if p.Hook == "instance-modify" {
					wantWhy = "instance-modify: nothing to do"
				}
				if len(p.Actions) != 0 || !strings.Contains(p.Why, wantWhy) {
					t.Errorf("fake-hypervisor capture planned %v (why %q), want nothing because %s", p.Actions, p.Why, wantWhy)
				}
				return
			}
			if diff := cmp.Diff(want.actions, p.Actions); diff != "" {
				t.Errorf("actions (-want +got):\n%s", diff)
			}
			if p.Role != want.role || p.Instance != xen1 || p.Hook != env["GANETI_HOOKS_PATH"] {
				t.Errorf("plan = role %q instance %q hook %q", p.Role, p.Instance, p.Hook)
			}
			if string(p.Phase) != env["GANETI_HOOKS_PHASE"] {
				t.Errorf("phase %q, env says %q", p.Phase, env["GANETI_HOOKS_PHASE"])
			}

			other, err := Plan(env, "node2.example.com")
			if err != nil {
				t.Fatalf("Plan on another node: %v", err)
			}
			if len(other.Actions) != 0 || other.Role != RoleNone {
				t.Errorf("on node2 (not concerned): role %q actions %v, want none", other.Role, other.Actions)
			}
			if !strings.Contains(other.Why, "not the node concerned") {
				t.Errorf("on node2: why %q does not say so", other.Why)
			}
		})
	}
	for name := range xenCaptures {
		if !seen[name] {
			t.Errorf("capture %s of the table is missing from %s", name, dir)
		}
	}
}

// TestPlanFixtures plans the environments written from Ganeti's
// documentation for 2.x and for the migrate and failover directories,
// on each node the operation concerns.
//
// Reference: design.md, "Hooks": migrate and failover record an "intent
// on the source", "on the target destroy preserved domains of down
// instances (free memory)", post phase "clear".
func TestPlanFixtures(t *testing.T) {
	dir := fixturesDir(t)
	const (
		n1, n2, n3 = "node1.example.com", "node2.example.com", "node3.example.com"
		web2, db2  = "web2.example.com", "db2.example.com"
	)
	rewriteOpt := func(inst string) Action {
		return Action{Kind: RewriteConfig, Instance: inst, Optional: true}
	}
	tests := []struct {
		file string
		node string
		want planWant
	}{
		{"ganeti-2.16-migrate-drbd--instance-migrate-pre.d.env", n1, planWant{RoleSource, []Action{act(RecordIntent, web2, "migrate")}}},
		{"ganeti-2.16-migrate-drbd--instance-migrate-pre.d.env", n2, planWant{RoleTarget, []Action{act(FreeMemory, web2, "")}}},
		{"ganeti-2.16-migrate-drbd--instance-migrate-pre.d.env", n3, planWant{RoleNone, []Action{}}},
		// Post: the GANETI_POST_* copies already name node2 as OLD_PRIMARY;
		// the source must still be node1.
		{"ganeti-2.16-migrate-drbd--instance-migrate-post.d.env", n1, planWant{RoleSource, []Action{act(ClearIntents, web2, "migrate")}}},
		{"ganeti-2.16-migrate-drbd--instance-migrate-post.d.env", n2, planWant{RoleTarget, []Action{rewriteOpt(web2)}}},
		{"ganeti-2.16-migrate-ext--instance-migrate-pre.d.env", n3, planWant{RoleTarget, []Action{act(FreeMemory, "app1.example.com", "")}}},
		{"ganeti-2.16-migrate-ext--instance-migrate-pre.d.env", n1, planWant{RoleSource, []Action{act(RecordIntent, "app1.example.com", "migrate")}}},
		{"ganeti-2.16-migrate-ext--instance-migrate-pre.d.env", n2, planWant{RoleNone, []Action{}}},
		{"ganeti-3.0-failover-drbd--instance-failover-pre.d.env", n2, planWant{RoleTarget, []Action{act(FreeMemory, db2, "")}}},
		{"ganeti-3.0-failover-drbd--instance-failover-post.d.env", n1, planWant{RoleSource, []Action{act(ClearIntents, db2, "failover")}}},
		{"ganeti-3.0-failover-drbd--instance-failover-post.d.env", n2, planWant{RoleTarget, []Action{rewriteOpt(db2)}}},
		// Ganeti 2.0: no OLD_/NEW_PRIMARY, phase in capitals.
		{"ganeti-2.0-failover--instance-failover-pre.d.env", n2, planWant{RoleTarget, []Action{act(FreeMemory, "old1.example.com", "")}}},
		{"ganeti-2.0-failover--instance-failover-pre.d.env", n1, planWant{RoleSource, []Action{act(RecordIntent, "old1.example.com", "failover")}}},
		{"ganeti-2.0-instance-start--instance-start-post.d.env", "node3.example.com", planWant{RolePrimary, []Action{act(RewriteConfig, "instance2.example.com", ""), act(VerifyActions, "instance2.example.com", "")}}},
		{"ganeti-2.0-instance-start--instance-start-post.d.env", "node5.example.com", planWant{RoleNone, []Action{}}},
		// Without INSTANCE_HYPERVISOR nothing says it is Xen: do nothing.
		{"ganeti-2.0-docexample--instance-start-post.d.env", "node3.example.com", planWant{RoleNone, []Action{}}},
	}
	used := map[string]bool{}
	for _, tt := range tests {
		used[tt.file] = true
		t.Run(tt.file+"@"+tt.node, func(t *testing.T) {
			env := readEnv(t, filepath.Join(dir, tt.file))
			p, err := Plan(env, tt.node)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want.actions, p.Actions); diff != "" {
				t.Errorf("actions (-want +got):\n%s", diff)
			}
			if p.Role != tt.want.role {
				t.Errorf("role %q, want %q", p.Role, tt.want.role)
			}
			if p.Why == "" {
				t.Error("empty why")
			}
		})
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.env"))
	for _, f := range files {
		if !used[filepath.Base(f)] {
			t.Errorf("fixture %s is not used by the table", filepath.Base(f))
		}
	}
}

// baseEnv is a real capture (start, pre) to derive hostile variants from.
func baseEnv(t *testing.T) map[string]string {
	return readEnv(t, filepath.Join(capturesDir(t), "xen-instance-startup--instance-start-pre.d.env"))
}

// TestPlanHostile checks missing and hostile variables: no action ever
// names anything but a valid DNS name, and errors wrap ErrBadEnv.
//
// Reference: design.md, "Hooks": "ours always exit 0 in the pre phase
// and log their errors"; instance names are validated before they go
// near a path or a command.
func TestPlanHostile(t *testing.T) {
	tests := []struct {
		name    string
		set     map[string]string
		unset   []string
		node    string
		wantErr bool
		why     string // substring of Why when no error
		phase   Phase
	}{
		{name: "path traversal name", set: map[string]string{"GANETI_INSTANCE_NAME": "../../etc/passwd"}, wantErr: true, phase: Pre},
		{name: "empty name", set: map[string]string{"GANETI_INSTANCE_NAME": ""}, wantErr: true, phase: Pre},
		{name: "missing name", unset: []string{"GANETI_INSTANCE_NAME"}, wantErr: true, phase: Pre},
		{name: "very long name", set: map[string]string{"GANETI_INSTANCE_NAME": strings.Repeat("a", 63) + "." + strings.Repeat("b.", 100) + "example.com"}, wantErr: true, phase: Pre},
		{name: "long label", set: map[string]string{"GANETI_INSTANCE_NAME": strings.Repeat("a", 64) + ".example.com"}, wantErr: true, phase: Pre},
		{name: "option-like name", set: map[string]string{"GANETI_INSTANCE_NAME": "-f"}, wantErr: true, phase: Pre},
		{name: "space and semicolon", set: map[string]string{"GANETI_INSTANCE_NAME": "a; rm -rf /"}, wantErr: true, phase: Pre},
		{name: "newline", set: map[string]string{"GANETI_INSTANCE_NAME": "xen1.example.com\nx"}, wantErr: true, phase: Pre},
		{name: "slash", set: map[string]string{"GANETI_INSTANCE_NAME": "xen1/example.com"}, wantErr: true, phase: Pre},
		{name: "dot dot", set: map[string]string{"GANETI_INSTANCE_NAME": "xen1..example.com"}, wantErr: true, phase: Pre},
		{name: "trailing dot", set: map[string]string{"GANETI_INSTANCE_NAME": "xen1.example.com."}, wantErr: true, phase: Pre},
		{name: "hostile node name from config", node: "../node1", wantErr: true, phase: Pre},
		{name: "missing phase", unset: []string{"GANETI_HOOKS_PHASE"}, wantErr: true},
		{name: "bogus phase", set: map[string]string{"GANETI_HOOKS_PHASE": "during"}, wantErr: true},
		{name: "phase in capitals", set: map[string]string{"GANETI_HOOKS_PHASE": "PRE"}, why: "destroy-dead-domain", phase: Pre},
		{name: "hooks version 3", set: map[string]string{"GANETI_HOOKS_VERSION": "3"}, why: "knows only version 2", phase: Pre},
		{name: "hooks version 3 post", set: map[string]string{"GANETI_HOOKS_VERSION": "3", "GANETI_HOOKS_PHASE": "post"}, why: "knows only version 2", phase: Post},
		{name: "missing version", unset: []string{"GANETI_HOOKS_VERSION"}, why: "knows only version 2", phase: Pre},
		{name: "missing hooks path", unset: []string{"GANETI_HOOKS_PATH"}, wantErr: true, phase: Pre},
		{name: "hooks path with slash", set: map[string]string{"GANETI_HOOKS_PATH": "../instance-start"}, wantErr: true, phase: Pre},
		{name: "other hook dir", set: map[string]string{"GANETI_HOOKS_PATH": "instance-modify"}, why: "nothing to do", phase: Pre},
		{name: "kvm", set: map[string]string{"GANETI_INSTANCE_HYPERVISOR": "kvm"}, why: "not Xen", phase: Pre},
		{name: "kvm with hostile name", set: map[string]string{"GANETI_INSTANCE_HYPERVISOR": "kvm", "GANETI_INSTANCE_NAME": "../x"}, why: "not Xen", phase: Pre},
		{name: "missing hypervisor", unset: []string{"GANETI_INSTANCE_HYPERVISOR"}, why: "not set", phase: Pre},
		{name: "missing primary", unset: []string{"GANETI_INSTANCE_PRIMARY"}, why: "not the node concerned", phase: Pre},
		{name: "primary differs by suffix", set: map[string]string{"GANETI_INSTANCE_PRIMARY": "node1.example.com.evil"}, why: "not the node concerned", phase: Pre},
		{name: "primary with trailing dot", set: map[string]string{"GANETI_INSTANCE_PRIMARY": "node1.example.com."}, why: "destroy-dead-domain", phase: Pre},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := baseEnv(t)
			for k, v := range tt.set {
				env[k] = v
			}
			for _, k := range tt.unset {
				delete(env, k)
			}
			node := tt.node
			if node == "" {
				node = "node1.example.com"
			}
			p, err := Plan(env, node)
			if p.Phase != tt.phase {
				t.Errorf("phase %q, want %q", p.Phase, tt.phase)
			}
			if tt.wantErr {
				if err == nil {
					t.Fatalf("no error; plan %+v", p)
				}
				if !errors.Is(err, ErrBadEnv) {
					t.Errorf("error %v does not wrap ErrBadEnv", err)
				}
				if len(p.Actions) != 0 {
					t.Errorf("actions %v alongside an error", p.Actions)
				}
				if len(err.Error()) > 300 {
					t.Errorf("error message of %d bytes is not one readable line", len(err.Error()))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(p.Why, tt.why) {
				t.Errorf("why %q does not contain %q", p.Why, tt.why)
			}
			for _, a := range p.Actions {
				if ValidName(a.Instance) != nil {
					t.Errorf("action on invalid name %q", a.Instance)
				}
			}
		})
	}
}

// TestPlanIgnoresOtherVariables: only GANETI_* variables count, and
// GanetiEnv keeps exactly those.
func TestPlanIgnoresOtherVariables(t *testing.T) {
	environ := []string{"PATH=/sbin:/bin", "HOME=/root", "GANETI_HOOKS_PHASE=pre", "XGANETI_X=1", "GANETI_EMPTY=", "junk"}
	got := GanetiEnv(environ)
	want := map[string]string{"GANETI_HOOKS_PHASE": "pre", "GANETI_EMPTY": ""}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GanetiEnv (-want +got):\n%s", diff)
	}
}

func TestParseEnvFile(t *testing.T) {
	src := "# header\nargv0=/etc/x\n--- environment (sorted) ---\nGANETI_A=1\n\nGANETI_B=x=y\n# c\nGANETI_C=\n"
	got, err := ParseEnvFile("t", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"GANETI_A": "1", "GANETI_B": "x=y", "GANETI_C": ""}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, err := ParseEnvFile("bad.env", []byte("GANETI_A=1\nnot a pair\n")); err == nil || !strings.Contains(err.Error(), "bad.env: line 2") {
		t.Errorf("error %v does not name the file and line", err)
	}
}

// FuzzPlan: whatever the environment, Plan does not panic, and every
// action it returns names a valid instance.
func FuzzPlan(f *testing.F) {
	f.Add("instance-start", "pre", "2", "xen-pvm", "xen1.example.com", "node1.example.com", "", "")
	f.Add("instance-migrate", "POST", "2", "xen-hvm", "web2.example.com", "node1.example.com", "node1.example.com", "node2.example.com")
	f.Add("instance-stop", "post", "2", "xen-pvm", "../../etc/passwd", "node1.example.com", "", "")
	f.Fuzz(func(t *testing.T, path, phase, version, hv, name, primary, oldPrimary, newPrimary string) {
		env := map[string]string{
			"GANETI_HOOKS_PATH": path, "GANETI_HOOKS_PHASE": phase, "GANETI_HOOKS_VERSION": version,
			"GANETI_INSTANCE_HYPERVISOR": hv, "GANETI_INSTANCE_NAME": name, "GANETI_INSTANCE_PRIMARY": primary,
			"GANETI_OLD_PRIMARY": oldPrimary, "GANETI_NEW_PRIMARY": newPrimary,
		}
		for _, node := range []string{"node1.example.com", "node2.example.com"} {
			d, err := Plan(env, node)
			if err != nil && len(d.Actions) != 0 {
				t.Fatalf("actions %v alongside error %v", d.Actions, err)
			}
			for _, a := range d.Actions {
				if ValidName(a.Instance) != nil {
					t.Fatalf("action on invalid name %q", a.Instance)
				}
			}
		}
	})
}

// BenchmarkPlan plans a real start capture: the pure part of every hook
// run.
func BenchmarkPlan(b *testing.B) {
	env, err := ReadEnvFile(testbin.Captures(b, "hooks", "xen-instance-startup--instance-start-post.d.env"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Plan(env, "node1.example.com"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestPlanStartGuardGaneti2: a Ganeti 2.x start environment (the 2.0
// documentation's capture in its pre phase: upper-case phase, no
// GANETI_INSTANCE_TAGS, a DRBD instance, a forced start) gives the guard
// what it needs: forced, the admin state, unknown tags (nil, so the
// default policy applies), the disk template.
//
// Reference: design.md, "The start guard" (variables present in every
// Ganeti from 2.0 to 3.0.2).
func TestPlanStartGuardGaneti2(t *testing.T) {
	env := readEnv(t, filepath.Join(fixturesDir(t), "ganeti-2.0-instance-start--instance-start-post.d.env"))
	env["GANETI_HOOKS_PHASE"] = "PRE"
	env["GANETI_FORCE"] = "True"
	p, err := Plan(env, "node3.example.com")
	if err != nil {
		t.Fatal(err)
	}
	want := []Action{
		{Kind: GuardStart, Instance: "instance2.example.com", Start: &detect.StartRequest{
			Instance: "instance2.example.com", Node: "node3.example.com", Forced: true, AdminState: "down", DiskTemplate: "drbd",
		}},
		act(DestroyDead, "instance2.example.com", ""),
	}
	if d := cmp.Diff(want, p.Actions); d != "" {
		t.Errorf("actions (-want +got):\n%s", d)
	}
}
