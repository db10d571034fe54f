package debtest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// shimLink is where the package's /usr/sbin/xl (and xm) lead: the shim.
const shimLink = "../libexec/ganeti-userdown/shim"

// binaries are the programs the package ships in /usr/sbin (the shim,
// cmd/userdown-shim, goes to /usr/libexec/ganeti-userdown).
var binaries = []string{"userdown-hvconfig", "userdown-hook", "userdown-detect", "userdown-destroy", "userdown-watchd"}

// hookDirs are Ganeti's hooks directories in which userdown-hook must run.
//
// Reference: design.md, "Hooks": instance-start, -stop, -reboot, -remove,
// -migrate and -failover act in the pre and the post phase; instance-add
// only in the pre phase ("—" in its post column).
var hookDirs = []string{
	"instance-start-pre.d", "instance-start-post.d",
	"instance-stop-pre.d", "instance-stop-post.d",
	"instance-reboot-pre.d", "instance-reboot-post.d",
	"instance-remove-pre.d", "instance-remove-post.d",
	"instance-migrate-pre.d", "instance-migrate-post.d",
	"instance-failover-pre.d", "instance-failover-post.d",
	"instance-add-pre.d",
}

var workDir struct {
	sync.Mutex
	dir string
}

func TestMain(m *testing.M) {
	// As `make deb` does: static binaries, no libc dependency.
	os.Setenv("CGO_ENABLED", "0")
	code := m.Run()
	if workDir.dir != "" {
		os.RemoveAll(workDir.dir)
	}
	os.Exit(code)
}

// shared returns a directory that lives for the whole test process.
func shared(t *testing.T) string {
	t.Helper()
	workDir.Lock()
	defer workDir.Unlock()
	if workDir.dir == "" {
		d, err := os.MkdirTemp("", "userdown-debtest-")
		if err != nil {
			t.Fatal(err)
		}
		workDir.dir = d
	}
	return workDir.dir
}

// repo is the top of the source tree.
func repo(t *testing.T) string {
	t.Helper()
	d, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func requireRoot(t *testing.T, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("this test must run as root (CI does): %s", why)
	}
}

func requireTool(t *testing.T, tool, install string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		t.Fatalf("%s not found: %s", tool, install)
	}
	return p
}

var built struct {
	sync.Mutex
	bindir  string
	manpage string
	debs    map[string]string
}

// buildBinaries builds the binaries and the manual page generator in
// one go build (they share most packages), once per test process.
func buildBinaries(t *testing.T) (bindir, manpage string) {
	t.Helper()
	if built.bindir != "" {
		return built.bindir, built.manpage
	}
	dir := filepath.Join(shared(t), "bin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{"build", "-trimpath", "-o", dir + "/"}
	for _, b := range binaries {
		args = append(args, "./cmd/"+b)
	}
	args = append(args, "./cmd/userdown-shim", "./packaging/tools/manpage")
	run(t, repo(t), "go", args...)
	tools := filepath.Join(shared(t), "tools")
	if err := os.MkdirAll(tools, 0o755); err != nil {
		t.Fatal(err)
	}
	built.manpage = filepath.Join(tools, "manpage")
	if err := os.Rename(filepath.Join(dir, "manpage"), built.manpage); err != nil {
		t.Fatal(err)
	}
	built.bindir = dir
	return built.bindir, built.manpage
}

// realDeb builds the package from the project's own binaries, watcher hook,
// configuration and generated manual pages, with packaging/build-deb, the
// same script `make deb` runs. Built once per version per test process.
func realDeb(t *testing.T, version string) string {
	t.Helper()
	built.Lock()
	defer built.Unlock()
	if p, ok := built.debs[version]; ok {
		return p
	}
	requireTool(t, "dpkg-deb", "apt-get install dpkg-dev")
	requireTool(t, "dpkg-shlibdeps", "apt-get install dpkg-dev")
	bindir, manpage := buildBinaries(t)
	dir := filepath.Join(shared(t), "deb-"+version)
	mandir := filepath.Join(dir, "man")
	if err := os.MkdirAll(mandir, 0o755); err != nil {
		t.Fatal(err)
	}
	var bins []string
	for _, b := range binaries {
		bins = append(bins, filepath.Join(bindir, b))
	}
	run(t, "", manpage, append([]string{"-out", mandir, "-version", version, "-date", "2026-11-25"}, bins...)...)
	out := run(t, "", filepath.Join(repo(t), "packaging/build-deb"),
		"--bindir", bindir, "--mandir", mandir,
		"--watcher", filepath.Join(repo(t), "packaging/watcher/50-userdown"),
		"--version", version, "--out", filepath.Join(dir, "dist"), "--fast")
	p := strings.TrimSpace(out)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("build-deb printed %q: %v", p, err)
	}
	if built.debs == nil {
		built.debs = map[string]string{}
	}
	built.debs[version] = p
	return p
}

// run runs a command and fails the test when it fails.
func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	out, err := try(dir, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// try runs a command and returns its combined output.
func try(dir, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// fakePackage describes a small package the tests build to stand in for
// Xen's toolstack packages, or to conflict with ours.
type fakePackage struct {
	Name, Version string
	// Files maps a path to its content; a content starting with "->"
	// makes a symbolic link to the rest. Files are mode 0755.
	Files map[string]string
}

func buildFake(t *testing.T, p fakePackage) string {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(filepath.Join(root, "DEBIAN"), 0o755); err != nil {
		t.Fatal(err)
	}
	control := fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: test <test@example.org>\nDescription: test stand-in\n test stand-in package\n", p.Name, p.Version)
	if err := os.WriteFile(filepath.Join(root, "DEBIAN/control"), []byte(control), 0o644); err != nil {
		t.Fatal(err)
	}
	for path, content := range p.Files {
		full := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "->"); ok {
			if err := os.Symlink(target, full); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(full, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(full, 0o755); err != nil { // whatever the umask
			t.Fatal(err)
		}
	}
	deb := filepath.Join(dir, p.Name+"_"+p.Version+"_all.deb")
	run(t, "", "dpkg-deb", "--root-owner-group", "--build", root, deb)
	return deb
}

// scratchRoot is an empty file system with a dpkg database, into which
// dpkg --root installs packages. Maintainer scripts run outside a chroot
// with $DPKG_ROOT set (dpkg's chrootless mode), which ours honour.
type scratchRoot struct {
	t   *testing.T
	Dir string
}

func newScratchRoot(t *testing.T) *scratchRoot {
	t.Helper()
	requireRoot(t, "dpkg --root needs root to create files owned by root")
	requireTool(t, "dpkg", "apt-get install dpkg")
	dir := t.TempDir()
	admin := filepath.Join(dir, "var/lib/dpkg")
	for _, d := range []string{"info", "updates", "triggers", "alternatives"} {
		if err := os.MkdirAll(filepath.Join(admin, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"status", "available", "diversions"} {
		if err := os.WriteFile(filepath.Join(admin, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The directories every Debian system with systemd has, in which
	// deb-systemd-helper records the units it enables.
	for _, d := range []string{"etc/systemd/system", "var/lib/systemd"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return &scratchRoot{t: t, Dir: dir}
}

// Dpkg runs dpkg on the scratch root and returns its output and error.
func (r *scratchRoot) Dpkg(args ...string) (string, error) {
	return try("", "dpkg", append([]string{"--root=" + r.Dir, "--force-script-chrootless", "--log=/dev/null"}, args...)...)
}

// MustDpkg is Dpkg that fails the test on error.
func (r *scratchRoot) MustDpkg(args ...string) string {
	r.t.Helper()
	out, err := r.Dpkg(args...)
	if err != nil {
		r.t.Fatalf("dpkg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// Diversions lists the diversions of the scratch root, one line each.
func (r *scratchRoot) Diversions() []string {
	r.t.Helper()
	out := run(r.t, "", "dpkg-divert", "--root="+r.Dir, "--list")
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	return sorted(lines)
}

// Status is the dpkg status of pkg ("install ok installed", ...), or ""
// when dpkg does not know it.
func (r *scratchRoot) Status(pkg string) string {
	out, err := try("", "dpkg-query", "--root="+r.Dir, "-W", "-f=${Status}", pkg)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(out)
}

// Path returns the host path of p inside the scratch root.
func (r *scratchRoot) Path(p string) string { return filepath.Join(r.Dir, p) }

// Snapshot describes every file of the root except dpkg's database: type,
// mode, owner, link target or content hash.
func (r *scratchRoot) Snapshot() map[string]string {
	r.t.Helper()
	return snapshot(r.t, r.Dir, "var/lib/dpkg")
}

func snapshot(t *testing.T, root string, skip ...string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		for _, s := range skip {
			if rel == s {
				return filepath.SkipDir
			}
		}
		m[rel] = describe(t, path)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// describe says what path is: "dir 0755 0:0", "file 0644 0:0 sha256:…",
// "link -> target".
func describe(t *testing.T, path string) string {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "absent"
		}
		t.Fatal(err)
	}
	own := owner(fi)
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(path)
		if err != nil {
			t.Fatal(err)
		}
		return "link -> " + target
	case fi.IsDir():
		return fmt.Sprintf("dir %04o %s", fi.Mode().Perm(), own)
	case fi.Mode().IsRegular():
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("file %04o %s sha256:%x", fi.Mode().Perm(), own, sha256.Sum256(b))
	}
	return fmt.Sprintf("other %v %s", fi.Mode(), own)
}

// resolveIn follows symbolic links of p inside root, as a process
// chrooted into root would, and returns the host path it ends at.
func resolveIn(root, p string) (string, error) {
	cur := "/"
	rest := strings.Split(strings.Trim(p, "/"), "/")
	for hops := 0; len(rest) > 0; {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, c)
		fi, err := os.Lstat(filepath.Join(root, next))
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if hops++; hops > 40 {
			return "", fmt.Errorf("%s: too many links", p)
		}
		target, err := os.Readlink(filepath.Join(root, next))
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(target, "/") {
			cur = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return filepath.Join(root, cur), nil
}

func sorted(ss []string) []string {
	out := slices.Clone(ss)
	slices.Sort(out)
	return out
}

func owner(fi fs.FileInfo) string {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fmt.Sprintf("%d:%d", st.Uid, st.Gid)
	}
	return "?:?"
}
