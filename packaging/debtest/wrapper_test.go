package debtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sections splits the script's output at its "=== NAME" lines.
func sections(out string) map[string]string {
	m := map[string]string{}
	name := ""
	for _, l := range strings.Split(out, "\n") {
		if n, ok := strings.CutPrefix(l, "=== "); ok {
			name = n
			continue
		}
		if name != "" {
			m[name] += l + "\n"
		}
	}
	return m
}

// TestDebianWrapperThroughShim runs Debian's real /usr/sbin/xl wrapper
// (xen-utils-common) through the shim, on a copy-on-write view of this
// host with a faked Xen 4.17 hypervisor in /sys. The wrapper execs
// /usr/lib/xen-<version>/bin/<its own file name>: diverted to xl.distrib it
// cannot find its binary; diverted by the package to
// /usr/lib/ganeti-userdown/real/xl it reaches the real xl, which stops only
// for want of a hypervisor ("cannot init xl context"). Purging the package
// gives the wrapper back.
//
// Reference: design.md, "Shim": "The diverted file must keep its base
// name: Debian's /usr/sbin/xl is a shell wrapper that picks the versioned
// binary by its own file name (${0##*/}), so a diversion to xl.distrib
// would break it whatever argv[0] says."
func TestDebianWrapperThroughShim(t *testing.T) {
	requireRoot(t, "unshare -m, mount and chroot need root")
	requireTool(t, "unshare", "apt-get install util-linux")
	if _, err := os.Stat("/usr/lib/xen-4.17/bin/xl"); err != nil {
		t.Fatalf("Debian's Xen 4.17 tools are not installed (apt-get install --no-install-recommends xen-utils-4.17): %v", err)
	}
	deb := realDeb(t, "1.0")
	bindir, _ := buildBinaries(t)
	script, err := filepath.Abs("testdata/debian-wrapper.sh")
	if err != nil {
		t.Fatal(err)
	}
	out, err := try("", "unshare", "-m", "bash", script, deb, filepath.Join(bindir, "userdown-hvconfig"), t.TempDir())
	if err != nil {
		t.Fatalf("debian-wrapper.sh: %v\n%s", err, out)
	}
	s := sections(out)
	if _, ok := s["end"]; !ok {
		t.Fatalf("the script stopped early:\n%s", out)
	}
	const reached = "cannot init xl context"
	checks := []struct {
		section, want, why string
	}{
		{"debian: link", "../lib/xen-common/bin/xen-utils-wrapper", "Debian's /usr/sbin/xl is a relative link to its wrapper"},
		{"debian: xl list", reached, "the faked hypervisor lets the wrapper reach the real xl"},
		{"distrib: xl list", "Unable to execute /usr/lib/xen-4.17/bin/xl.distrib", "a diversion to xl.distrib breaks the wrapper"},
		{"install", "exit=0", "the package installs"},
		{"installed: links", shimLink + "\n../lib/xen-common/bin/xen-utils-wrapper\n../../lib\n", "the shim in xl's place, the wrapper's link in real/"},
		{"installed: diversions", "diversion of /usr/sbin/xl to /usr/lib/ganeti-userdown/real/xl by ganeti-userdown", "the package's diversion"},
		{"installed: xl list", reached, "through the shim and the diverted wrapper to the real xl"},
		// doctor on a real install: what the package put in place is ok;
		// without a hypervisor, credentials and master the node is not
		// protected.
		{"installed: doctor", "ok    shim          /usr/sbin/xl is the shim; the distribution's xl is diverted to /usr/lib/ganeti-userdown/real/xl\n", "doctor sees the shim and the diversion"},
		{"installed: doctor", "ok    hooks ", "doctor sees every hook link"},
		{"installed: doctor", "ok    watcher-hook ", "doctor sees the watcher hook"},
		{"installed: doctor", "ok    config ", "doctor reads the shipped configuration"},
		{"installed: doctor", "fail  toolstack     the real toolstack does not answer", "no hypervisor here"},
		{"installed: doctor", "cannot init xl context\n", "doctor quotes xl's last word"},
		{"installed: doctor", "exit=1", "doctor exits 1 on a fail"},
		{"installed, no lib link: xl list", "/usr/lib/ganeti-userdown/real/xl does not exist", "the renamed relative link needs real/../lib to lead to /usr/lib"},
		{"installed, no lib link: xl list", reached, "the shim then falls back to the distribution's xl (issue 14, point 1)"},
		{"purge", "exit=0", "the package purges"},
		{"purged: link", "../lib/xen-common/bin/xen-utils-wrapper", "the wrapper's link is back"},
		{"purged: xl list", reached, "the wrapper works again"},
	}
	for _, c := range checks {
		if got := s[c.section]; !strings.Contains(got, c.want) {
			t.Errorf("%s: want %q (%s), got:\n%s", c.section, c.want, c.why, got)
		}
	}
	if got := s["installed: xl list"]; strings.Contains(got, "Unable to execute") {
		t.Errorf("installed: the wrapper did not find its binary:\n%s", got)
	}
	if got := s["purged: diversions"]; strings.Contains(got, "diversion of") || !strings.Contains(got, "No such file") {
		t.Errorf("purged: diversions or /usr/lib/ganeti-userdown left:\n%s", got)
	}
	if t.Failed() {
		t.Logf("full output:\n%s", out)
	}
}
