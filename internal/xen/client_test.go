package xen

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeToolstack writes an executable shell script that records its
// arguments (one call per line) and answers with script, a shell case
// body matched against "$*". It returns the script path and the log path.
func fakeToolstack(t *testing.T, script string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	log := filepath.Join(dir, "calls")
	path := filepath.Join(dir, "xl")
	body := "#!/bin/sh\necho \"$*\" >> '" + log + "'\ncase \"$*\" in\n" + script + "\n*) echo \"unexpected call: $*\" >&2; exit 99;;\nesac\n"
	if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path, log
}

func calls(t *testing.T, log string) []string {
	t.Helper()
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

const xlVerbose = `Name                                        ID   Mem VCPUs	State	Time(s)   UUID                            Reason-Code	Security Label
Domain-0                                     0  2048     2     r-----     812.3 00000000-0000-0000-0000-000000000000        -                -
web1.example.com                             3   128     1     ---s--       4.0 5c7c8ea0-1b2d-4e5f-8a9b-0c1d2e3f4a5b        0                -
`

func TestClientListAndLookupXL(t *testing.T) {
	xl, log := fakeToolstack(t, `
"list -v") cat <<'EOF'
`+xlVerbose+`EOF
;;
"list -v 3") cat <<'EOF'
Name                                        ID   Mem VCPUs	State	Time(s)   UUID                            Reason-Code	Security Label
web1.example.com                             3   128     1     ---s--       4.0 5c7c8ea0-1b2d-4e5f-8a9b-0c1d2e3f4a5b        0                -
EOF
;;
"list -v 9") echo "Error: Domain '9' does not exist." >&2; exit 1;;
"list -v 4") echo "libxl_domain_info failed (code -3)." >&2; exit 1;;`)
	c := NewClient(XL, xl, 5*time.Second)
	ctx := context.Background()
	doms, err := c.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(doms) != 2 || doms[1].Name != "web1.example.com" || doms[1].UUID != "5c7c8ea0-1b2d-4e5f-8a9b-0c1d2e3f4a5b" || !doms[1].State.UserPoweredOff() || !doms[0].IsDom0() {
		t.Errorf("List: %+v", doms)
	}
	d, ok, err := c.Lookup(ctx, 3)
	if err != nil || !ok || d.ID != 3 || d.UUID != doms[1].UUID {
		t.Errorf("Lookup(3) = %+v, %v, %v", d, ok, err)
	}
	if d, ok, err := c.Lookup(ctx, 9); err != nil || ok {
		t.Errorf("Lookup(9) of a gone domain = %+v, %v, %v; want not found, no error", d, ok, err)
	}
	_, _, err = c.Lookup(ctx, 4)
	var ce *CommandError
	if !errors.As(err, &ce) || ce.ExitCode != 1 || !strings.Contains(ce.Stderr, "code -3") {
		t.Errorf("Lookup(4) error = %v, want a CommandError carrying stderr", err)
	}
	// A failing `list -v` is a failure, not a reason to list without uuids.
	want := []string{"list -v", "list -v 3", "list -v 9", "list -v 4"}
	if diff := cmp.Diff(want, calls(t, log)); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

// TestClientListWithoutVerbose: an xl that has no `list -v` says so the way
// xl's option parser does; only then does the client list without uuids,
// and it logs that it did.
func TestClientListWithoutVerbose(t *testing.T) {
	xl, log := fakeToolstack(t, `
"list -v") echo "option \`+"`"+`v' not supported." >&2; exit 2;;
"list") cat <<'EOF'
Name                                        ID   Mem VCPUs	State	Time(s)
Domain-0                                     0  2048     2     r-----     812.3
web1.example.com                             3   128     1     ---s--       4.0
EOF
;;`)
	var logged strings.Builder
	c := NewClient(XL, xl, 5*time.Second)
	c.SetLogger(slog.New(slog.NewTextHandler(&logged, nil)))
	doms, err := c.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(doms) != 2 || doms[1].UUID != "" || !doms[1].State.UserPoweredOff() {
		t.Errorf("List: %+v", doms)
	}
	if diff := cmp.Diff([]string{"list -v", "list"}, calls(t, log)); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if !strings.Contains(logged.String(), "does not support `list -v`") {
		t.Errorf("fallback not logged: %q", logged.String())
	}
}

// TestClientListUnparsable: a listing with one bad line is an error.
// Reference: design.md, "Decisions", safety rule 4.
func TestClientListUnparsable(t *testing.T) {
	xl, _ := fakeToolstack(t, `"list -v") printf '%s' '`+xlVerbose+`web2 7 128 1 --\n';;`)
	_, err := NewClient(XL, xl, 5*time.Second).List(context.Background())
	var le *ListError
	if !errors.As(err, &le) || le.Line != 4 {
		t.Errorf("err = %v, want a ListError for line 4", err)
	}
}

func TestClientListXM(t *testing.T) {
	xm, log := fakeToolstack(t, `
"list") cat <<'EOF'
Name                                        ID   Mem VCPUs      State   Time(s)
Domain-0                                     0  1023     1     r----- 121152.6
web1.example.com                             5   128     1     ----c-      2.5
db1.example.com                              6   128     1     -b----      2.5
EOF
;;
"list -l") cat <<'EOF'
(domain
    (domid 0)
    (uuid 00000000-0000-0000-0000-000000000000)
    (name Domain-0)
)
(domain
    (domid 5)
    (on_crash preserve)
    (uuid 5c7c8ea0-1b2d-4e5f-8a9b-0c1d2e3f4a5b)
    (bootloader_args )
    (name web1.example.com)
    (on_poweroff preserve)
    (image (linux (kernel /boot/vmlinuz-xenU) (args 'root=/dev/xvda1 ro')))
)
(domain
    (domid 6)
    (uuid 6d8d9fb1-2c3e-4f60-9bac-1d2e3f4a5b6c)
    (name other-name)
)
EOF
;;
"list -l web1.example.com") cat <<'EOF'
(domain
    (domid 5)
    (on_crash preserve)
    (uuid 5c7c8ea0-1b2d-4e5f-8a9b-0c1d2e3f4a5b)
    (name web1.example.com)
    (on_poweroff preserve)
)
EOF
;;`)
	c := NewClient(XM, xm, 5*time.Second)
	doms, err := c.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, d := range doms {
		got[d.Name] = d.UUID
	}
	want := map[string]string{
		"Domain-0":         "00000000-0000-0000-0000-000000000000",
		"web1.example.com": "5c7c8ea0-1b2d-4e5f-8a9b-0c1d2e3f4a5b",
		"db1.example.com":  "", // name differs in list -l: replaced in between
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("uuids (-want +got):\n%s", diff)
	}
	if !doms[1].State.Crashed() {
		t.Errorf("xm ----c- not crashed: %+v", doms[1].State)
	}
	acts, err := c.Actions(context.Background(), "web1.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"on_poweroff": "preserve", "on_crash": "preserve", "on_reboot": "restart"}, acts); diff != "" {
		t.Errorf("actions (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"list", "list -l", "list -l web1.example.com"}, calls(t, log)); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

// xl 4.17's `xl list -l DOM`: actions equal to libxl's default (destroy)
// are left out, enum values use underscores.
const xlLong = `[
    {
        "domid": 3,
        "config": {
            "c_info": {
                "type": "pv",
                "name": "web1.example.com",
                "uuid": "5c7c8ea0-1b2d-4e5f-8a9b-0c1d2e3f4a5b",
                "run_hotplug_scripts": "True"
            },
            "b_info": {
                "max_vcpus": 1,
                "max_memkb": 131072,
                "target_memkb": 131072,
                "type.pv": {
                    "kernel": "/boot/vmlinuz-xenU",
                    "cmdline": "root=/dev/xvda1 ro"
                },
                "arch_arm": {

                }
            },
            "nics": [
                {
                    "devid": 0,
                    "mac": "aa:00:00:cd:d9:4f",
                    "bridge": "xen-br0"
                }
            ],
            "on_poweroff": "preserve",
            "on_reboot": "restart",
            "on_crash": "coredump_restart",
            "on_soft_reset": "restart_rename"
        }
    }
]
`

func TestClientActionsXL(t *testing.T) {
	xl, _ := fakeToolstack(t, `
"list -l web1.example.com") cat <<'EOF'
`+xlLong+`EOF
;;
"list -l gone") echo "web1 is an invalid domain identifier (rc=-6)" >&2; exit 1;;
"list -l 0") echo "[]";;`)
	c := NewClient(XL, xl, 5*time.Second)
	acts, err := c.Actions(context.Background(), "web1.example.com")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"on_poweroff":   "preserve",
		"on_reboot":     "restart",
		"on_watchdog":   "destroy",
		"on_crash":      "coredump-restart",
		"on_soft_reset": "rename-restart",
	}
	if diff := cmp.Diff(want, acts); diff != "" {
		t.Errorf("actions (-want +got):\n%s", diff)
	}
	if _, err := c.Actions(context.Background(), "gone"); err == nil || !strings.Contains(err.Error(), "invalid domain identifier") {
		t.Errorf("gone: err = %v", err)
	}
	if _, err := c.Actions(context.Background(), "0"); err == nil {
		t.Errorf("no config: want an error")
	}
}

func TestParseXLActionsErrors(t *testing.T) {
	for _, in := range []string{``, `{}`, `[{"domid": 1}]`, `[{"domid":1,"config":{"on_poweroff": 4}}]`, `[{"domid":1,"config":{}},{"domid":2,"config":{}}]`} {
		if acts, err := ParseXLActions([]byte(in)); err == nil {
			t.Errorf("%q: parsed as %v", in, acts)
		}
	}
}

func TestParseSExprsErrors(t *testing.T) {
	for _, in := range []string{`(domain`, `)`, `(domain (name 'x)`, `name`} {
		if _, err := ParseXMLong([]byte(in)); err == nil {
			t.Errorf("%q: want an error", in)
		}
	}
}

// TestClientCommands checks the argument vectors: destroy and dump-core by
// domid, shutdown with -w, create with -p.
// Reference: design.md, "Xen facts": "`xl destroy` takes a name or domid:
// always pass the domid."
func TestClientCommands(t *testing.T) {
	xl, log := fakeToolstack(t, `
"destroy 7"|"dump-core 7 /tmp/core"|"shutdown -w web1"|"shutdown web1"|"create -p /etc/xen/web1"|"create /etc/xen/web1") ;;
"destroy 8") echo "destroy failed (rc=-21)" >&2; exit 1;;`)
	c := NewClient(XL, xl, 5*time.Second)
	ctx := context.Background()
	for _, err := range []error{
		c.Destroy(ctx, 7), c.DumpCore(ctx, 7, "/tmp/core"), c.Shutdown(ctx, "web1", true),
		c.Shutdown(ctx, "web1", false), c.Create(ctx, "/etc/xen/web1", true), c.Create(ctx, "/etc/xen/web1", false),
	} {
		if err != nil {
			t.Error(err)
		}
	}
	err := c.Destroy(ctx, 8)
	var ce *CommandError
	if !errors.As(err, &ce) || ce.ExitCode != 1 || ce.Stderr != "destroy failed (rc=-21)\n" || ce.Args[len(ce.Args)-1] != "8" {
		t.Errorf("destroy 8: %#v", err)
	}
	if err := c.Destroy(ctx, 0); err == nil {
		t.Errorf("destroy of dom0 attempted")
	}
	want := []string{"destroy 7", "dump-core 7 /tmp/core", "shutdown -w web1", "shutdown web1", "create -p /etc/xen/web1", "create /etc/xen/web1", "destroy 8"}
	if diff := cmp.Diff(want, calls(t, log)); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

func TestClientTimeout(t *testing.T) {
	xl, _ := fakeToolstack(t, `"shutdown -w web1") exec sleep 30;;`)
	c := NewClient(XL, xl, 200*time.Millisecond)
	start := time.Now()
	err := c.Shutdown(context.Background(), "web1", true)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want a deadline error", err)
	}
	var ce *CommandError
	if !errors.As(err, &ce) || ce.ExitCode != -1 {
		t.Errorf("err = %#v, want a CommandError with exit code -1", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
	if _, err := NewClient(XL, filepath.Join(t.TempDir(), "missing"), time.Second).List(context.Background()); err == nil {
		t.Errorf("missing toolstack: no error")
	}
}
