package debtest

import (
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	pkg     = "ganeti-userdown"
	realDir = "/usr/lib/ganeti-userdown/real"
)

// standin is a package laid out like Debian's xen-utils-common: /usr/sbin/xl
// a relative link into /usr/lib, and an xm command as Xen before 4.5 had.
func standin(version string) fakePackage {
	return fakePackage{Name: "xen-utils-standin", Version: version, Files: map[string]string{
		"usr/sbin/xl":                  "->../lib/xen-standin/bin/xl",
		"usr/lib/xen-standin/bin/xl":   "#!/bin/sh\necho \"stand-in xl " + version + " $0 $*\"\n",
		"usr/sbin/xm":                  "#!/bin/sh\necho \"stand-in xm " + version + " $0 $*\"\n",
		"usr/share/doc/standin/README": "stand-in toolstack for ganeti-userdown's package tests\n",
	}}
}

// ourDiversions are the diversions the package must hold while installed.
//
// Reference: design.md, "Shim": dpkg-divert --package ganeti-userdown
// --rename --divert /usr/lib/ganeti-userdown/real/xl /usr/sbin/xl (and xm
// where it exists).
func ourDiversions(xm bool) []string {
	d := []string{"diversion of /usr/sbin/xl to " + realDir + "/xl by " + pkg}
	if xm {
		d = append(d, "diversion of /usr/sbin/xm to "+realDir+"/xm by "+pkg)
	}
	return sorted(d)
}

// checkInstalled checks every file, link and mode the package puts on a
// node, and the diversions.
func checkInstalled(t *testing.T, r *scratchRoot, standinVersion string, xm bool) {
	t.Helper()
	if got := r.Status(pkg); got != "install ok installed" {
		t.Errorf("dpkg status %q, want installed", got)
	}
	if d := cmp.Diff(ourDiversions(xm), r.Diversions()); d != "" {
		t.Errorf("diversions (-want +got):\n%s", d)
	}

	want := map[string]string{
		"etc/ganeti/hooks/watcher/50-userdown":     "link -> /usr/libexec/ganeti-userdown/watcher-hook",
		"usr/libexec/ganeti-userdown/watcher-hook": "file 0755 0:0 sha256:" + shaFile(t, filepath.Join(repo(t), "packaging/watcher/50-userdown")),
		"etc/ganeti/userdown.toml":                 "file 0644 0:0 sha256:" + shaFile(t, filepath.Join(repo(t), "packaging/userdown.toml")),
		"usr/sbin/xl":                              "link -> " + shimLink,
		"var/lib/ganeti-userdown":                  "dir 0700 0:0",
		"usr/lib/ganeti-userdown/lib":              "link -> ../../lib",
		"usr/lib/ganeti-userdown/real":             "dir 0755 0:0",
		// The event daemon's unit, enabled by postinst.
		"lib/systemd/system/userdown-watchd.service":                         "file 0644 0:0 sha256:" + shaFile(t, filepath.Join(repo(t), "packaging/systemd/userdown-watchd.service")),
		"etc/systemd/system/multi-user.target.wants/userdown-watchd.service": "link -> /lib/systemd/system/userdown-watchd.service",
	}
	for _, dir := range hookDirs {
		want["etc/ganeti/hooks/"+dir] = "dir 0755 0:0"
		want["etc/ganeti/hooks/"+dir+"/50-userdown"] = "link -> /usr/sbin/userdown-hook"
	}
	if xm {
		want["usr/sbin/xm"] = "link -> " + shimLink
		want[strings.TrimPrefix(realDir, "/")+"/xm"] = "file 0755 0:0 sha256:" + sha(standin(standinVersion).Files["usr/sbin/xm"])
	} else {
		want["usr/sbin/xm"] = "absent"
	}
	if standinVersion != "" {
		want[strings.TrimPrefix(realDir, "/")+"/xl"] = "link -> ../lib/xen-standin/bin/xl"
	}
	for path, w := range want {
		if got := describe(t, r.Path(path)); got != w {
			t.Errorf("%s: %s, want %s", path, got, w)
		}
	}

	// Ganeti runs only executables whose names match this; a link must
	// lead to one.
	hookName := regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)
	entries, err := os.ReadDir(r.Path("etc/ganeti/hooks"))
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range entries {
		if e.Name() == "watcher" {
			continue
		}
		dirs = append(dirs, e.Name())
		end, err := resolveIn(r.Dir, "/etc/ganeti/hooks/"+e.Name()+"/50-userdown")
		if err != nil {
			t.Errorf("hook link in %s: %v", e.Name(), err)
			continue
		}
		if fi, err := os.Stat(end); err != nil || fi.Mode().Perm()&0o111 != 0o111 || end != r.Path("usr/sbin/userdown-hook") {
			t.Errorf("hook link in %s leads to %s (%v), want the executable /usr/sbin/userdown-hook", e.Name(), end, err)
		}
	}
	if !hookName.MatchString("50-userdown") {
		t.Error("hook name 50-userdown does not match Ganeti's pattern")
	}
	if d := cmp.Diff(sorted(hookDirs), sorted(dirs)); d != "" {
		t.Errorf("hooks directories (-want +got):\n%s", d)
	}

	if got := describe(t, r.Path("usr/libexec/ganeti-userdown/shim")); !strings.HasPrefix(got, "file 0755 0:0 ") {
		t.Errorf("the shim: %s, want an executable file owned by root", got)
	}
	for _, b := range binaries {
		got := describe(t, r.Path("usr/sbin/"+b))
		if !strings.HasPrefix(got, "file 0755 0:0 ") {
			t.Errorf("/usr/sbin/%s: %s, want an executable file owned by root", b, got)
		}
		page := r.Path("usr/share/man/man8/" + b + ".8.gz")
		if got := describe(t, page); !strings.HasPrefix(got, "file 0644 0:0 ") {
			t.Errorf("manual page %s: %s", page, got)
			continue
		}
		roff := gunzip(t, page)
		if !strings.Contains(roff, ".TH "+strings.ToUpper(b)+" 8") || !strings.Contains(roff, ".SH NAME") {
			t.Errorf("manual page of %s lacks its .TH or NAME:\n%s", b, roff)
		}
	}
	for _, f := range []string{"usr/share/doc/ganeti-userdown/copyright", "usr/share/doc/ganeti-userdown/changelog.gz"} {
		if got := describe(t, r.Path(f)); !strings.HasPrefix(got, "file 0644 0:0 ") {
			t.Errorf("%s: %s", f, got)
		}
	}

	// The diverted toolstack must still resolve from its new place, even
	// as a relative link (Debian's /usr/sbin/xl is one).
	if standinVersion != "" {
		end, err := resolveIn(r.Dir, realDir+"/xl")
		if err != nil || end != r.Path("usr/lib/xen-standin/bin/xl") {
			t.Errorf("%s/xl resolves to %q (%v), want the stand-in's binary", realDir, end, err)
		}
	}

	// The configuration is the only conffile: the hooks are links, gone
	// as soon as the package is removed.
	conffiles := run(t, "", "dpkg-query", "--root="+r.Dir, "-W", "-f=${Conffiles}", pkg)
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(conffiles), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	if d := cmp.Diff([]string{"/etc/ganeti/userdown.toml"}, names); d != "" {
		t.Errorf("conffiles (-want +got):\n%s", d)
	}
}

func sha(s string) string { return fmt.Sprintf("%x", sha256.Sum256([]byte(s))) }

func shaFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha(string(b))
}

func gunzip(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b, err := io.ReadAll(z)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return string(b)
}

// runShim runs the scratch root's /usr/sbin/<name> (the shim) with a
// configuration whose [xen] command is the diverted toolstack, and
// returns what the stand-in printed.
func runShim(t *testing.T, r *scratchRoot, name string, args ...string) string {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "userdown.toml")
	body := "[xen]\ntoolstack = \"" + name + "\"\ncommand = \"" + r.Path(realDir+"/"+name) + "\"\n[state]\ndir = \"" + t.TempDir() + "\"\n"
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("USERDOWN_CONFIG", cfg)
	out, err := try("", r.Path("usr/sbin/"+name), args...)
	if err != nil {
		t.Fatalf("%s %s through the shim: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(out)
}

// TestInstallUpgradeRemovePurge installs the package over a stand-in
// toolstack, upgrades the toolstack and the package, removes and purges
// it, and checks that every step leaves exactly what it must.
//
// Reference: design.md, "Shim": "Installed in place of the toolstack the
// way Debian's molly-guard wraps shutdown … The diverted file must keep
// its base name".
func TestInstallUpgradeRemovePurge(t *testing.T) {
	r := newScratchRoot(t)
	deb := realDeb(t, "1.0")
	deb2 := realDeb(t, "1.1")

	r.MustDpkg("-i", buildFake(t, standin("1")))
	// What the node must look like again after purge, toolstack
	// upgrade included: a second root that never had ganeti-userdown.
	ref := newScratchRoot(t)
	ref.MustDpkg("-i", buildFake(t, standin("1")))
	ref.MustDpkg("-i", buildFake(t, standin("2")))

	r.MustDpkg("-i", deb)
	checkInstalled(t, r, "1", true)
	if got, want := runShim(t, r, "xl", "list"), "stand-in xl 1 "+r.Path(realDir+"/xl")+" list"; got != want {
		t.Errorf("xl through the shim printed %q, want %q", got, want)
	}
	if got, want := runShim(t, r, "xm", "list"), "stand-in xm 1 "+r.Path(realDir+"/xm")+" list"; got != want {
		t.Errorf("xm through the shim printed %q, want %q", got, want)
	}

	// A toolstack upgrade while diverted lands in real/, the shim stays.
	r.MustDpkg("-i", buildFake(t, standin("2")))
	checkInstalled(t, r, "2", true)
	if got := runShim(t, r, "xl", "info"); !strings.HasPrefix(got, "stand-in xl 2 ") {
		t.Errorf("after the toolstack upgrade xl runs %q", got)
	}

	// Reinstalling and upgrading the package keeps one diversion each.
	r.MustDpkg("-i", deb)
	checkInstalled(t, r, "2", true)
	// The operator's edits and the state survive an upgrade and a remove.
	edited := "# edited by the operator\n[policy]\ndefault = \"ignore\"\n"
	if err := os.WriteFile(r.Path("etc/ganeti/userdown.toml"), []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.Path("var/lib/ganeti-userdown/intent-test.json"), []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r.MustDpkg("--force-confold", "-i", deb2)
	if got := run(t, "", "dpkg-query", "--root="+r.Dir, "-W", "-f=${Version}", pkg); got != "1.1" {
		t.Errorf("after the upgrade dpkg knows version %q", got)
	}
	if d := cmp.Diff(ourDiversions(true), r.Diversions()); d != "" {
		t.Errorf("diversions after upgrade (-want +got):\n%s", d)
	}
	if b, _ := os.ReadFile(r.Path("etc/ganeti/userdown.toml")); string(b) != edited {
		t.Errorf("the upgrade replaced the operator's configuration:\n%s", b)
	}

	r.MustDpkg("-r", pkg)
	if got := r.Status(pkg); got != "deinstall ok config-files" {
		t.Errorf("after remove dpkg status %q", got)
	}
	if d := cmp.Diff([]string(nil), r.Diversions()); d != "" {
		t.Errorf("diversions left after remove:\n%s", d)
	}
	for path, want := range map[string]string{
		"usr/sbin/xl":                              "link -> ../lib/xen-standin/bin/xl",
		"usr/sbin/xm":                              "file 0755 0:0 sha256:" + sha(standin("2").Files["usr/sbin/xm"]),
		"usr/lib/ganeti-userdown":                  "absent",
		"usr/sbin/userdown-hvconfig":               "absent",
		"etc/ganeti/hooks/instance-start-pre.d":    "absent",
		"etc/ganeti/hooks/watcher":                 "absent",
		"usr/libexec/ganeti-userdown":              "absent",
		"etc/ganeti/userdown.toml":                 "file 0644 0:0 sha256:" + sha(edited),
		"var/lib/ganeti-userdown/intent-test.json": "file 0600 0:0 sha256:" + sha("{}\n"),
	} {
		if got := describe(t, r.Path(path)); got != want {
			t.Errorf("after remove %s: %s, want %s", path, got, want)
		}
	}
	if out, err := try("", r.Path("usr/sbin/xl"), "list"); err != nil || !strings.HasPrefix(out, "stand-in xl 2 ") {
		t.Errorf("after remove /usr/sbin/xl runs %q (%v), want the stand-in", out, err)
	}

	r.MustDpkg("--purge", pkg)
	if got := r.Status(pkg); got != "" && got != "unknown ok not-installed" {
		t.Errorf("after purge dpkg status %q", got)
	}
	if d := cmp.Diff(ref.Snapshot(), r.Snapshot()); d != "" {
		t.Errorf("after purge the root differs from one that never had the package (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string(nil), r.Diversions()); d != "" {
		t.Errorf("diversions left after purge:\n%s", d)
	}
}

// TestToolstackInstalledLater installs the package on a node without Xen's
// tools (no xl, no xm), then the toolstack: dpkg puts its xl into real/
// and the shim reaches it; removing the package gives xl back.
func TestToolstackInstalledLater(t *testing.T) {
	r := newScratchRoot(t)
	before := r.Snapshot()
	r.MustDpkg("-i", realDeb(t, "1.0"))
	checkInstalled(t, r, "", false)
	if got := describe(t, r.Path(realDir+"/xl")); got != "absent" {
		t.Errorf("%s/xl is %s before any toolstack is installed", realDir, got)
	}

	r.MustDpkg("-i", buildFake(t, standin("1")))
	if got, want := describe(t, r.Path(realDir+"/xl")), "link -> ../lib/xen-standin/bin/xl"; got != want {
		t.Errorf("the toolstack's xl went to %s, want %s", got, want)
	}
	if got := describe(t, r.Path("usr/sbin/xl")); got != "link -> "+shimLink {
		t.Errorf("/usr/sbin/xl is %s after the toolstack install", got)
	}
	if got := runShim(t, r, "xl", "list"); !strings.HasPrefix(got, "stand-in xl 1 ") {
		t.Errorf("xl through the shim printed %q", got)
	}

	r.MustDpkg("--purge", pkg)
	if got := describe(t, r.Path("usr/sbin/xl")); got != "link -> ../lib/xen-standin/bin/xl" {
		t.Errorf("after purge /usr/sbin/xl is %s, want the toolstack's link", got)
	}
	r.MustDpkg("--purge", "xen-utils-standin")
	if d := cmp.Diff(before, r.Snapshot()); d != "" {
		t.Errorf("after purging both the root differs from the empty one (-want +got):\n%s", d)
	}
}

// TestFailedInstallUndoesDiversion makes the unpack fail after preinst
// diverted the toolstack (another package owns one of our files): dpkg
// calls postrm abort-install, which must leave the node as it was.
func TestFailedInstallUndoesDiversion(t *testing.T) {
	r := newScratchRoot(t)
	r.MustDpkg("-i", buildFake(t, standin("1")))
	r.MustDpkg("-i", buildFake(t, fakePackage{Name: "conflicter", Version: "1", Files: map[string]string{
		"usr/sbin/userdown-detect": "#!/bin/sh\necho another package's file\n",
	}}))
	before := r.Snapshot()

	out, err := r.Dpkg("-i", realDeb(t, "1.0"))
	if err == nil {
		t.Fatalf("dpkg -i succeeded over a file of another package:\n%s", out)
	}
	if !strings.Contains(out, "trying to overwrite '/usr/sbin/userdown-detect'") {
		t.Errorf("dpkg failed for another reason than the file conflict:\n%s", out)
	}
	if d := cmp.Diff([]string(nil), r.Diversions()); d != "" {
		t.Errorf("diversions left after the failed install:\n%s\ndpkg said:\n%s", d, out)
	}
	if d := cmp.Diff(before, r.Snapshot()); d != "" {
		t.Errorf("the failed install changed the root (-want +got):\n%s\ndpkg said:\n%s", d, out)
	}
}

// TestLintian runs lintian on the package: no error may remain; the
// warnings are printed for the record.
func TestLintian(t *testing.T) {
	lintian := requireTool(t, "lintian", "apt-get install lintian")
	deb := realDeb(t, "1.0")
	out, err := try("", lintian, "--fail-on", "error", "--pedantic", deb)
	var tags []string
	for _, l := range strings.Split(out, "\n") {
		if len(l) > 2 && l[1] == ':' && strings.Contains("EWIP", l[:1]) {
			tags = append(tags, l)
		}
	}
	t.Logf("lintian: %d tags\n%s", len(tags), strings.Join(tags, "\n"))
	if err != nil {
		t.Errorf("lintian %s: %v\n%s", deb, err, out)
	}
	for _, l := range tags {
		if strings.HasPrefix(l, "E:") {
			t.Errorf("lintian error: %s", l)
		}
	}
}

// TestFailedUpgradeKeepsDiversions makes the unpack of an upgrade fail
// (another package took over one of our files): dpkg rolls back to the
// installed version through the abort-upgrade calls, and the toolstack
// must stay wrapped exactly as before.
func TestFailedUpgradeKeepsDiversions(t *testing.T) {
	r := newScratchRoot(t)
	r.MustDpkg("-i", buildFake(t, standin("1")))
	r.MustDpkg("-i", realDeb(t, "1.0"))
	r.MustDpkg("--force-overwrite", "-i", buildFake(t, fakePackage{Name: "conflicter", Version: "1", Files: map[string]string{
		"usr/sbin/userdown-detect": "#!/bin/sh\necho another package's file\n",
	}}))
	before := r.Snapshot()

	out, err := r.Dpkg("-i", realDeb(t, "1.1"))
	if err == nil {
		t.Fatalf("the upgrade succeeded over a file of another package:\n%s", out)
	}
	if got := run(t, "", "dpkg-query", "--root="+r.Dir, "-W", "-f=${Version} ${Status}", pkg); got != "1.0 install ok installed" {
		t.Errorf("after the failed upgrade dpkg knows %q, want 1.0 installed\n%s", got, out)
	}
	if d := cmp.Diff(ourDiversions(true), r.Diversions()); d != "" {
		t.Errorf("diversions after the failed upgrade (-want +got):\n%s", d)
	}
	if d := cmp.Diff(before, r.Snapshot()); d != "" {
		t.Errorf("the failed upgrade changed the root (-want +got):\n%s\ndpkg said:\n%s", d, out)
	}
}

// TestRemoveLeavesDirectoriesItDidNotCreate installs the package on a
// node whose hooks directories partly exist already (an empty
// /etc/ganeti/hooks, an instance-start-pre.d holding another hook, an
// empty watcher/): remove and purge take away the package's links and
// the directories it created, and leave every directory that was there
// before, exactly as it was.
func TestRemoveLeavesDirectoriesItDidNotCreate(t *testing.T) {
	r := newScratchRoot(t)
	r.MustDpkg("-i", buildFake(t, standin("1")))
	for _, d := range []string{"etc/ganeti/hooks/instance-start-pre.d", "etc/ganeti/hooks/watcher"} {
		if err := os.MkdirAll(r.Path(d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(r.Path("etc/ganeti/hooks/watcher"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.Path("etc/ganeti/hooks/instance-start-pre.d/10-other"), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	before := r.Snapshot()

	deb := realDeb(t, "1.0")
	r.MustDpkg("-i", deb)
	for path, want := range map[string]string{
		"etc/ganeti/hooks/instance-start-pre.d/10-other":    "file 0755 0:0 sha256:" + sha("#!/bin/sh\nexit 0\n"),
		"etc/ganeti/hooks/instance-start-pre.d/50-userdown": "link -> /usr/sbin/userdown-hook",
		"etc/ganeti/hooks/watcher/50-userdown":              "link -> /usr/libexec/ganeti-userdown/watcher-hook",
	} {
		if got := describe(t, r.Path(path)); got != want {
			t.Errorf("installed %s: %s, want %s", path, got, want)
		}
	}
	r.MustDpkg("-i", realDeb(t, "1.1")) // an upgrade keeps track of what the first install made
	r.MustDpkg("-i", deb)               // and so does a downgrade
	r.MustDpkg("-r", pkg)
	after := r.Snapshot()
	for path, w := range before {
		if strings.HasPrefix(path, "etc/ganeti") && after[path] != w {
			t.Errorf("after remove %s: %q, want it as before the install: %q", path, after[path], w)
		}
	}
	for path := range after {
		if strings.HasPrefix(path, "etc/ganeti/hooks") && before[path] == "" {
			t.Errorf("after remove %s is left: %s", path, after[path])
		}
	}
	r.MustDpkg("--purge", pkg)
	if d := cmp.Diff(before, r.Snapshot()); d != "" {
		t.Errorf("after purge the root differs from before the install (-before +after):\n%s", d)
	}
}
