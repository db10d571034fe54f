package doctor

import (
	"strings"
	"testing"
)

// TestUntrustedFiles checks that doctor fails on each file root must not
// trust, with a fix that says how to make it root's.
// Reference: issue 14, points 1 and 2 (doctor reports these conditions).
func TestUntrustedFiles(t *testing.T) {
	refusal := "/tmp/x is owned by uid 1000 with mode 0777: running as root, ..."
	for _, tc := range []struct {
		name, check string
		change      func(*Facts)
		want        string
	}{
		{"config refused", "config", func(f *Facts) {
			f.ConfigErr, f.ConfigUntrusted = "config /tmp/x/userdown.toml: "+refusal, true
		}, "chown root"},
		{"toolstack refused", "toolstack", func(f *Facts) { f.Toolstack.Untrusted = refusal }, "chown root"},
		{"credentials owned by another user", "credentials", func(f *Facts) { f.Credentials.Untrusted = refusal }, "chown root"},
	} {
		f := healthy()
		tc.change(&f)
		r := Check(f)
		if r.OK {
			t.Errorf("%s: node reported protected", tc.name)
		}
		for _, c := range r.Checks {
			if c.Check != tc.check {
				continue
			}
			if c.Status != Fail || !strings.Contains(c.Message, "uid 1000") || !strings.Contains(c.Fix, tc.want) {
				t.Errorf("%s: %+v, want a failure naming the owner with a fix saying %q", tc.name, c, tc.want)
			}
		}
	}
}

// TestToolstackFallbackNamed checks that a [xen] command the shim cannot
// run fails and names the toolstack the shim runs instead.
// Reference: issue 14, point 1.
func TestToolstackFallbackNamed(t *testing.T) {
	f := healthy()
	f.Toolstack = File{Path: "/usr/lib/xen-4.11/bin/xl"}
	f.ShimFallback = "/usr/lib/ganeti-userdown/real/xl"
	r := Check(f)
	for _, c := range r.Checks {
		if c.Check == "toolstack" && (c.Status != Fail || !strings.Contains(c.Message, "the shim runs /usr/lib/ganeti-userdown/real/xl instead")) {
			t.Errorf("toolstack: %+v", c)
		}
	}
}

// TestMasterRefusedFix checks the fix given when the master refuses the
// connection: Debian binds ganeti-rapi to 127.0.0.1, which keeps even the
// master's own detect out (the default rapi_url names the master node's
// address), and only -b 0.0.0.0 serves both it and Ganeti's watcher,
// which probes 127.0.0.1:5080.
// Reference: issue 14, "Found installing the package".
func TestMasterRefusedFix(t *testing.T) {
	f := healthy()
	f.Master = Probe{Tried: true, Err: `Get "https://node1.example.com:5080/2/instances": dial tcp 198.51.100.10:5080: connect: connection refused`}
	r := Check(f)
	for _, c := range r.Checks {
		if c.Check == "master" && (c.Status != Fail || !strings.Contains(c.Fix, `RAPI_ARGS="-b 0.0.0.0"`) || !strings.Contains(c.Fix, "127.0.0.1:5080")) {
			t.Errorf("master: %+v", c)
		}
	}
}
