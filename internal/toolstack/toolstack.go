package toolstack

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"ganeti-userdown/internal/trust"
)

// RealDir is where the package diverts the distribution's toolstack
// (dpkg-divert keeps the base name: /usr/lib/ganeti-userdown/real/xl).
const RealDir = "/usr/lib/ganeti-userdown/real"

// ShimPath is where the package installs userdown-shim, the shim
// /usr/sbin/xl links to.
const ShimPath = "/usr/libexec/ganeti-userdown/shim"

// Layout says where the shim looks for a toolstack besides [xen] command.
type Layout struct {
	// RealDir is where the package diverts the toolstack (RealDir).
	RealDir string
	// LibDir holds Debian's versioned Xen tools, xen-<version>/bin
	// (/usr/lib).
	LibDir string
	// HypervisorVersion is the directory holding the running
	// hypervisor's major and minor version (/sys/hypervisor/version).
	HypervisorVersion string
	// Shims are the shim binaries besides the running one (ShimPath):
	// never a toolstack, or the shims would exec each other for ever.
	Shims []string
}

// DefaultLayout is the layout of a Debian node with the package installed.
var DefaultLayout = Layout{RealDir: RealDir, LibDir: "/usr/lib", HypervisorVersion: "/sys/hypervisor/version", Shims: []string{ShimPath}}

// Toolstack is one toolstack the shim may run.
type Toolstack struct {
	Path string
	// Source says where the path came from: "[xen] command", "diverted"
	// or "distribution".
	Source string
	// Problem says why it cannot be run ("" when it can).
	Problem string
}

// ChooseToolstack returns the first toolstack named name (xl or xm) that
// can be run, in this order: configured ([xen] command; "" when the
// configuration was not used), the diverted one, the distribution's (as
// Debian's xen-utils-wrapper finds it). It also returns those tried before
// it, each with its problem. The distribution's is looked up only when
// the others fail. chosen.Path is "" when none can be run.
func ChooseToolstack(name, configured string, l Layout) (chosen Toolstack, skipped []Toolstack) {
	candidates := []func() Toolstack{
		func() Toolstack { return Toolstack{Path: configured, Source: "[xen] command"} },
		func() Toolstack { return Toolstack{Path: filepath.Join(l.RealDir, name), Source: "diverted"} },
		func() Toolstack { return Toolstack{Path: distribution(name, l), Source: "distribution"} },
	}
	for _, next := range candidates {
		t := next()
		if t.Path == "" {
			continue
		}
		if t.Problem = CheckToolstack(t.Path, l.Shims...); t.Problem == "" {
			return t, skipped
		}
		skipped = append(skipped, t)
	}
	return Toolstack{}, skipped
}

// CheckToolstack says why path cannot be run as the toolstack, or "": it
// must exist, be an executable regular file, be neither the running
// executable nor one of shims, and, when running as root, be root's (see
// trust.Check).
func CheckToolstack(path string, shims ...string) string {
	_, fi, err := trust.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return path + " does not exist"
	case err != nil:
		return err.Error()
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return path + " is not an executable file"
	}
	if isSelf(fi) {
		return path + " is this shim itself, not the real toolstack"
	}
	for _, s := range shims {
		if si, err := os.Stat(s); err == nil && os.SameFile(fi, si) {
			return path + " is the shim " + s + ", not the real toolstack"
		}
	}
	return ""
}

// isSelf reports whether fi is the running executable.
func isSelf(fi fs.FileInfo) bool {
	me, err := os.Stat("/proc/self/exe")
	return err == nil && os.SameFile(fi, me) // false without /proc: cannot tell
}

// distribution returns Debian's versioned toolstack the way its
// xen-utils-wrapper picks it: <LibDir>/xen-<major>.<minor>/bin/<name> for
// the running hypervisor; without one (or without that version's tools),
// the newest version installed. "" when there is none.
func distribution(name string, l Layout) string {
	major, err1 := os.ReadFile(filepath.Join(l.HypervisorVersion, "major"))
	minor, err2 := os.ReadFile(filepath.Join(l.HypervisorVersion, "minor"))
	if err1 == nil && err2 == nil {
		p := filepath.Join(l.LibDir, "xen-"+strings.TrimSpace(string(major))+"."+strings.TrimSpace(string(minor)), "bin", name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	found, _ := filepath.Glob(filepath.Join(l.LibDir, "xen-*", "bin", name))
	var versions [][]int
	var paths []string
	for _, p := range found {
		v := strings.TrimPrefix(filepath.Base(filepath.Dir(filepath.Dir(p))), "xen-")
		var nums []int
		for _, f := range strings.Split(v, ".") {
			n, err := strconv.Atoi(f)
			if err != nil {
				nums = nil
				break
			}
			nums = append(nums, n)
		}
		if nums != nil {
			versions, paths = append(versions, nums), append(paths, p)
		}
	}
	best := -1
	for i := range paths {
		if best < 0 || slices.Compare(versions[i], versions[best]) > 0 {
			best = i
		}
	}
	if best < 0 {
		return ""
	}
	return paths[best]
}
