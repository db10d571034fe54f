//go:build itest

package itest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"ganeti-userdown/testdata/xensim/simlog"
)

const (
	// baseDir is the tmpfs holding the namespace files and every node's
	// upper layers; a fixed path, so that a run killed outright is
	// cleaned up by the next one.
	baseDir = "/run/userdown-itest"
	// cronPath is the PATH of /etc/cron.d/ganeti, under which the
	// watcher runs on a real node.
	cronPath    = "PATH=/sbin:/bin:/usr/sbin:/usr/bin:/usr/local/sbin:/usr/local/bin"
	clusterName = "cluster.example.com"
	// simDir holds a node's simulator: binary, state, call log, kernel.
	simDir = "/var/lib/xensim"
	// The RAPI user ganeti-userdown's nodes write with.
	rapiUser, rapiPass = "userdown", "userdown-itest-secret"
)

// packagesHint is what a machine needs for the suite (.ci/run installs it).
const packagesHint = "apt-get install -y --no-install-recommends ganeti ganeti-3.0 openssh-server socat fping iproute2 curl"

// node is one Ganeti node of the suite: its own network namespace (with a
// bridge xen-br0 joined to the other node's), UTS namespace (its host
// name) and mount namespace (its overlays and /run).
type node struct {
	name string // Ganeti's and the host's name
	id   string // n1, n2: names its namespaces and directories
	ip   string
}

var (
	node1 = &node{name: "node1.example.com", id: "n1", ip: "198.51.100.10"}
	node2 = &node{name: "node2.example.com", id: "n2", ip: "198.51.100.11"}
	nodes = []*node{node1, node2}
)

// suiteInstances are the instances the scenarios create.
var suiteInstances = []string{"s1.example.com", "m1.example.com", "o2.example.com", "a2.example.com"}

func (n *node) String() string { return n.name }
func (n *node) netns() string  { return "udit-" + n.id }
func (n *node) nsFile(kind string) string {
	return filepath.Join(baseDir, "ns", n.id+"."+kind)
}

// command runs args inside the node's namespaces with a clean
// environment (the one cron gives, plus env), as the node's own
// processes would run.
func (n *node) command(ctx context.Context, env []string, args ...string) *exec.Cmd {
	full := []string{"nsenter", "--net=/run/netns/" + n.netns(), "--uts=" + n.nsFile("uts"), "--mount=" + n.nsFile("mnt"), "--",
		"env", "-i", cronPath, "HOME=/root", "LANG=C.UTF-8"}
	full = append(append(full, env...), args...)
	return exec.CommandContext(ctx, full[0], full[1:]...)
}

// output runs args on the node and returns stdout; the error names the
// command and carries its stderr.
func (n *node) output(ctx context.Context, stdin []byte, args ...string) (string, error) {
	cmd := n.command(ctx, nil, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s: %s: %w\nstdout: %s\nstderr: %s", n.name, strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String(), nil
}

// run is output for tests: a failure fails the test.
func (n *node) run(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := n.output(ctx, nil, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sh runs a shell script on the node.
func (n *node) sh(ctx context.Context, script string) (string, error) {
	return n.output(ctx, nil, "/bin/sh", "-ec", script)
}

// host runs a command on the machine itself (namespaces, mounts).
func host(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s: %w\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

// setUpNodes creates both nodes' namespaces, lays out their files,
// installs the package deb with dpkg inside each node and starts each
// node's sshd. Ganeti itself is set up by the tests (initCluster,
// addNode2).
func setUpNodes(ctx context.Context, deb, xensim string) error {
	if err := os.MkdirAll(baseDir, 0o755); err != nil {
		return err
	}
	if err := syscall.Mount("userdown-itest", baseDir, "tmpfs", 0, "mode=0755"); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", baseDir, err)
	}
	for _, d := range []string{"ns", "ssh", "files"} {
		if err := os.MkdirAll(filepath.Join(baseDir, d), 0o700); err != nil {
			return err
		}
	}
	steps := [][]string{}
	for _, n := range nodes {
		steps = append(steps, []string{"ip", "netns", "add", n.netns()}, []string{"ip", "-n", n.netns(), "link", "set", "lo", "up"})
	}
	// One veth pair joins the two bridges: each has carrier, and the
	// nodes reach each other over 198.51.100.0/24, which exists only in
	// the namespaces.
	steps = append(steps, []string{"ip", "link", "add", "udl1", "netns", node1.netns(), "type", "veth", "peer", "name", "udl2", "netns", node2.netns()})
	for i, n := range nodes {
		link := fmt.Sprintf("udl%d", i+1)
		steps = append(steps,
			[]string{"ip", "-n", n.netns(), "link", "add", "xen-br0", "type", "bridge"},
			[]string{"ip", "-n", n.netns(), "link", "set", link, "master", "xen-br0"},
			[]string{"ip", "-n", n.netns(), "link", "set", link, "up"},
			[]string{"ip", "-n", n.netns(), "addr", "add", n.ip + "/24", "dev", "xen-br0"},
			[]string{"ip", "-n", n.netns(), "link", "set", "xen-br0", "up"})
	}
	steps = append(steps, []string{"ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-C", "userdown-itest", "-f", filepath.Join(baseDir, "ssh", "id_rsa")})
	for _, s := range steps {
		if _, err := host(ctx, s...); err != nil {
			return err
		}
	}
	for _, f := range [][2]string{{deb, "userdown.deb"}, {xensim, "xensim"}} {
		b, err := os.ReadFile(f[0])
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(baseDir, "files", f[1]), b, 0o755); err != nil {
			return err
		}
	}
	for _, n := range nodes {
		if err := setUpNode(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

// nodeNamespaces is run by unshare inside the node's network namespace:
// it makes the mount namespace the node lives in.
const nodeNamespaces = `
hostname "$NODE"
# The network namespace's own interfaces (Ganeti checks
# /sys/class/net/xen-br0/bridge).
mount -t sysfs sysfs /sys
for d in usr etc var root; do
	mkdir -p "$BASE/$ID/upper/$d" "$BASE/$ID/work/$d"
	mount -t overlay overlay -o "lowerdir=/$d,upperdir=$BASE/$ID/upper/$d,workdir=$BASE/$ID/work/$d" "/$d"
done
mkdir -p /var/lib/userdown-itest /root/.ssh "$SIM"
cp "$BASE/files/userdown.deb" /var/lib/userdown-itest/
cp "$BASE/files/xensim" "$SIM/xensim"
cp "$BASE/ssh/id_rsa" "$BASE/ssh/id_rsa.pub" /root/.ssh/
# /run and /tmp of the node's own: pidfiles, sockets, /run/lock.
mount -t tmpfs -o mode=0755 run /run
mkdir -m 1777 /run/lock
mkdir /run/sshd
ln -s /dev/shm /run/shm
mount -t tmpfs -o mode=1777 tmp /tmp
`

// nodeFiles lays out the node's files, inside its namespaces.
const nodeFiles = `
# The node's Xen is the simulator: it takes the place of Debian's
# xen-utils-wrapper, the target of /usr/sbin/xl (which the package
# diverts to /usr/lib/ganeti-userdown/real/xl).
cat >/usr/lib/xen-common/bin/xen-utils-wrapper <<EOF
#!/bin/sh
# ganeti-userdown's itest: this node's Xen is the simulator.
XENSIM_STATE=$SIM/state.json XENSIM_LOG=$SIM/calls.log XENSIM_FLAVOUR=xl
export XENSIM_STATE XENSIM_LOG XENSIM_FLAVOUR
exec $SIM/xensim "\$@"
EOF
echo "not a kernel: the simulator boots nothing" >"$SIM/vmlinuz"
cat >/etc/hosts <<EOF
127.0.0.1 localhost
198.51.100.10 node1.example.com node1
198.51.100.11 node2.example.com node2
198.51.100.100 cluster.example.com cluster
EOF
echo "$NODE" >/etc/hostname
# The node's root account: the suite's key, authorized on every node,
# and no login scripts (Ganeti starts node2's daemons over ssh).
chmod 0700 /root/.ssh
chmod 0600 /root/.ssh/id_rsa
cp /root/.ssh/id_rsa.pub /root/.ssh/authorized_keys
: >/root/.bashrc
: >/root/.profile
# An OS that installs nothing.
os=/usr/share/ganeti/os/noop
mkdir -p $os
echo 20 >$os/ganeti_api_version
echo default >$os/variants.list
: >$os/parameters.list
for s in create import export rename verify; do printf '#!/bin/sh\nexit 0\n' >$os/$s; chmod 0755 $os/$s; done
# RAPI on every address: the other node's ganeti-userdown reaches the
# master's (Debian binds 127.0.0.1 only).
sed -i 's/^RAPI_ARGS=.*/RAPI_ARGS="-b 0.0.0.0 --require-authentication"/' /etc/default/ganeti
# ganeti-userdown, as an operator installs it: the package, its RAPI
# credentials. --no-triggers: man-db's index is all that waits.
dpkg -i --no-triggers /var/lib/userdown-itest/userdown.deb >/var/lib/userdown-itest/dpkg.log
umask 077
echo "$RAPIUSER $RAPIPASS" >/etc/ganeti/userdown-rapi.secret
umask 022
/usr/sbin/sshd -o PidFile=/run/sshd.pid -o ListenAddress=$IP -o ListenAddress=127.0.0.1
`

func setUpNode(ctx context.Context, n *node) error {
	for _, kind := range []string{"uts", "mnt"} {
		if err := os.WriteFile(n.nsFile(kind), nil, 0o600); err != nil {
			return err
		}
	}
	env := []string{cronPath, "BASE=" + baseDir, "ID=" + n.id, "NODE=" + n.name, "SIM=" + simDir}
	args := []string{"env", "-i"}
	args = append(args, env...)
	args = append(args, "nsenter", "--net=/run/netns/"+n.netns(), "unshare", "--uts="+n.nsFile("uts"), "--mount="+n.nsFile("mnt"), "--propagation", "private", "/bin/sh", "-ec", nodeNamespaces)
	if _, err := host(ctx, args...); err != nil {
		return fmt.Errorf("%s: namespaces: %w", n.name, err)
	}
	script := fmt.Sprintf("NODE=%s IP=%s SIM=%s RAPIUSER=%s RAPIPASS=%s\n%s", n.name, n.ip, simDir, rapiUser, rapiPass, nodeFiles)
	if _, err := n.sh(ctx, script); err != nil {
		return fmt.Errorf("%s: files: %w", n.name, err)
	}
	return nil
}

// tearDown stops every process of the nodes (they all run in the nodes'
// network namespaces), deletes the namespaces and unmounts the tmpfs.
// It is idempotent and also cleans up after a run that was killed.
func tearDown() []error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errs []error
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		deadline := time.Now().Add(5 * time.Second)
		for {
			pids := nsPIDs(ctx)
			if len(pids) == 0 {
				break
			}
			for _, p := range pids {
				syscall.Kill(p, sig)
			}
			if time.Now().After(deadline) {
				if sig == syscall.SIGKILL {
					errs = append(errs, fmt.Errorf("processes %v survive SIGKILL", pids))
				}
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	for _, n := range nodes {
		for _, kind := range []string{"mnt", "uts"} {
			if mounted(n.nsFile(kind)) {
				if err := syscall.Unmount(n.nsFile(kind), syscall.MNT_DETACH); err != nil {
					errs = append(errs, fmt.Errorf("umount %s: %w", n.nsFile(kind), err))
				}
			}
		}
		if _, err := os.Stat("/run/netns/" + n.netns()); err == nil {
			if _, err := host(ctx, "ip", "netns", "del", n.netns()); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if mounted(baseDir) {
		if err := syscall.Unmount(baseDir, 0); err != nil {
			if err := syscall.Unmount(baseDir, syscall.MNT_DETACH); err != nil {
				errs = append(errs, fmt.Errorf("umount %s: %w", baseDir, err))
			}
		}
	}
	if err := os.Remove(baseDir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	return errs
}

// nsPIDs lists the processes in the nodes' network namespaces.
func nsPIDs(ctx context.Context) []int {
	var pids []int
	for _, n := range nodes {
		if _, err := os.Stat("/run/netns/" + n.netns()); err != nil {
			continue
		}
		out, _ := host(ctx, "ip", "netns", "pids", n.netns())
		for _, f := range strings.Fields(out) {
			if p, err := strconv.Atoi(f); err == nil {
				pids = append(pids, p)
			}
		}
	}
	return pids
}

func mounted(path string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == path {
			return true
		}
	}
	return false
}

// hostSnapshot records what the suite must leave as it was on the
// machine: the files Ganeti, ganeti-userdown, sshd and the package would
// change on a real node, the dpkg diversions and the namespaces.
func hostSnapshot() map[string]string {
	snap := map[string]string{}
	for _, p := range []string{"/etc/hosts", "/etc/hostname", "/etc/default/ganeti", "/usr/lib/xen-common/bin/xen-utils-wrapper", "/root/.bashrc", "/root/.profile"} {
		snap[p] = fileDigest(p)
	}
	// /etc/xen: only this suite's instances (other tests on the machine
	// write configs there).
	for _, name := range suiteInstances {
		snap["/etc/xen/"+name] = fileDigest("/etc/xen/" + name)
	}
	for _, dir := range []string{"/var/lib/ganeti", "/etc/ganeti", "/var/log/ganeti", "/root/.ssh", "/run/ganeti", "/run/lock", "/var/lib/ganeti-userdown", "/usr/lib/ganeti-userdown", "/usr/share/ganeti/os", "/srv/ganeti"} {
		var lines []string
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				lines = append(lines, p+": "+err.Error())
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return nil
			}
			line := fmt.Sprintf("%s %v", p, info.Mode())
			if info.Mode().IsRegular() {
				line += " " + fileDigest(p)
			}
			if info.Mode()&fs.ModeSymlink != 0 {
				l, _ := os.Readlink(p)
				line += " -> " + l
			}
			lines = append(lines, line)
			return nil
		})
		snap[dir] = strings.Join(lines, "\n")
	}
	for _, p := range []string{"/usr/sbin/xl", "/usr/sbin/xm"} {
		l, err := os.Readlink(p)
		if err != nil {
			l = err.Error()
		}
		snap[p] = l
	}
	ctx := context.Background()
	div, err := host(ctx, "dpkg-divert", "--list")
	if err != nil {
		div = err.Error()
	}
	lines := strings.Split(strings.TrimSpace(div), "\n")
	sort.Strings(lines)
	snap["dpkg-divert --list"] = strings.Join(lines, "\n")
	st, _ := host(ctx, "dpkg-query", "-W", "-f=${Status}", "ganeti-userdown")
	snap["dpkg ganeti-userdown"] = st
	ns, _ := host(ctx, "ip", "netns", "list")
	snap["ip netns list"] = ns
	return snap
}

func fileDigest(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "absent"
		}
		return err.Error()
	}
	return fmt.Sprintf("%x", sha256.Sum256(b))
}

// simDomain is a domain of a node's simulator, as `xl sim state` prints
// it (the simulator's own JSON, not ganeti-userdown's parser).
type simDomain struct {
	Name     string `json:"name"`
	ID       int    `json:"domid"`
	Running  bool   `json:"running"`
	Blocked  bool   `json:"blocked"`
	Paused   bool   `json:"paused"`
	Shutdown bool   `json:"shutdown"`
	Dying    bool   `json:"dying"`
	Code     int    `json:"reason_code"`
}

// alive reports a domain whose guest runs.
func (d simDomain) alive() bool { return !d.Shutdown && !d.Dying && d.Code < 0 }

func (d simDomain) String() string {
	return fmt.Sprintf("%s(id %d alive=%v shutdown=%v code=%d)", d.Name, d.ID, d.alive(), d.Shutdown, d.Code)
}

// domains returns the node's domains by name, dom0 left out.
func (n *node) domains(t testing.TB) map[string]simDomain {
	t.Helper()
	var st struct {
		Domains []simDomain `json:"domains"`
	}
	if err := json.Unmarshal([]byte(n.run(t, "xl", "sim", "state")), &st); err != nil {
		t.Fatalf("%s: xl sim state: %v", n.name, err)
	}
	m := map[string]simDomain{}
	for _, d := range st.Domains {
		if d.ID != 0 {
			m[d.Name] = d
		}
	}
	return m
}

// simLog reads the node's simulator call log.
func (n *node) simLog(t testing.TB) []simlog.Entry {
	t.Helper()
	out := n.run(t, "sh", "-c", "cat "+simDir+"/calls.log 2>/dev/null || true")
	es, err := simlog.Parse([]byte(out))
	if err != nil {
		t.Fatalf("%s: %v", n.name, err)
	}
	return es
}

// checkNoLiveDestroy fails the test when a node's simulator destroyed a
// domain that was not dead.
// Reference: doc/design.md, "Decisions", safety rule 1.
func checkNoLiveDestroy(t testing.TB) {
	t.Helper()
	for _, n := range nodes {
		live, err := simlog.LiveDestroys(n.simLog(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range live {
			t.Errorf("%s: a live domain was destroyed: %v (%+v)", n.name, e, *e.Destroyed)
		}
	}
}
