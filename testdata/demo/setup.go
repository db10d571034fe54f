package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"ganeti-userdown/testdata/ganetifake"
)

// binaries are what the demo builds: ganeti-userdown's and the two
// simulators.
var binaries = []string{
	"./cmd/userdown-hvconfig", "./cmd/userdown-hook", "./cmd/userdown-detect",
	"./cmd/userdown-destroy", "./cmd/userdown-watchd", "./cmd/userdown-shim",
	"./testdata/xensim", "./testdata/xenstored",
}

// demo is the whole play: its output, its clock and its parts.
type demo struct {
	out     io.Writer
	verbose bool
	began   time.Time // before the build
	start   time.Time // the story's time zero
	failed  []string

	root        string // the module
	dir         string // work dir, shown as $DEMO
	bin         string // built binaries
	watcherHook string // packaging/watcher/50-userdown

	clusters []*cluster
	nodes    []*node
}

// cluster is a fake Ganeti master: the RAPI fake over a state file, which
// the gnt-instance and gnt-debug fakes read too.
type cluster struct {
	name    string
	version string // as ganetifake.ClusterInfo.Version
	state   string // the state file
	eng     *ganetifake.Engine
	srv     *httptest.Server
	rapi    *ganetifake.Handler
	pem     string
	creds   string
}

// node is one simulated Xen node: the simulator's state, the shim in
// the place of xl, a xenstored simulator, the configuration and state dir
// of ganeti-userdown, and its event daemon when started.
type node struct {
	d       *demo
	name    string
	cl      *cluster
	dir     string
	realXL  string // the diverted toolstack: the simulator
	xl      string // the shim, installed as xl
	etcXen  string
	dumps   string
	config  string
	state   string
	socket  string // xenstored's
	metrics string // [metrics] textfile

	xs      *exec.Cmd
	watchd  *exec.Cmd
	wdDone  chan struct{}
	wdCode  int
	wdLog   string
	wdShown int // bytes of wdLog already shown
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.HasPrefix(b, []byte("module ganeti-userdown\n")) {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", errors.New("run the demo from inside the ganeti-userdown module")
		}
		dir = filepath.Dir(dir)
	}
}

func (d *demo) setUp() error {
	d.began = time.Now()
	var err error
	if d.root, err = moduleRoot(); err != nil {
		return err
	}
	if d.dir, err = os.MkdirTemp("", "userdown-demo-"); err != nil {
		return err
	}
	d.bin = filepath.Join(d.dir, "bin")
	if err := os.MkdirAll(d.bin, 0o755); err != nil {
		return err
	}
	d.watcherHook = filepath.Join(d.root, "packaging", "watcher", "50-userdown")
	if _, err := os.Stat(d.watcherHook); err != nil {
		return fmt.Errorf("the watcher hook script: %w", err)
	}
	fmt.Fprintf(d.out, "ganeti-userdown demo: simulated Xen nodes, a simulated xenstored, fake Ganeti masters\n")
	fmt.Fprintf(d.out, "work directory $DEMO = %s (removed at the end)\n", d.dir)
	fmt.Fprintf(d.out, "building ganeti-userdown and the simulators ... ")
	args := append([]string{"build", "-o", d.bin + string(os.PathSeparator)}, binaries...)
	cmd := exec.Command("go", args...)
	cmd.Dir = d.root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, b)
	}
	fmt.Fprintf(d.out, "done (%.1fs)\n", time.Since(d.began).Seconds())
	return nil
}

// newCluster starts a fake master answering as Ganeti version (see
// ganetifake.Versions) with instances, every one admin down at first.
func (d *demo) newCluster(name, version, master string, instances []ganetifake.Instance) (*cluster, error) {
	c := &cluster{name: name, version: version, state: filepath.Join(d.dir, name+".json")}
	for i := range instances {
		instances[i].AdminState = "down"
		instances[i].Hypervisor = "xen-pvm"
	}
	if err := ganetifake.WriteStateFile(c.state, ganetifake.State{
		Cluster:   ganetifake.ClusterInfo{Name: name, Master: master, Version: version},
		Instances: instances,
	}); err != nil {
		return nil, err
	}
	cert, err := ganetifake.NewCert("ganeti.example.com", false, nil)
	if err != nil {
		return nil, err
	}
	c.eng = ganetifake.NewEngine(ganetifake.NewFileStore(c.state), true)
	c.rapi = &ganetifake.Handler{Engine: c.eng, Users: map[string]ganetifake.User{
		ganetifake.WriterUser: {Password: ganetifake.WriterPassword, Write: true},
	}}
	c.srv = httptest.NewUnstartedServer(c.rapi)
	c.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert.TLS}}
	c.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	c.srv.StartTLS()
	c.pem = filepath.Join(d.dir, name+"-rapi.pem")
	c.creds = filepath.Join(d.dir, name+"-rapi.secret")
	if err := os.WriteFile(c.pem, cert.PEM, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(c.creds, []byte(ganetifake.WriterUser+" "+ganetifake.WriterPassword+"\n"), 0o600); err != nil {
		return nil, err
	}
	d.clusters = append(d.clusters, c)
	return c, nil
}

// newNode sets up a node of cl: its simulated Xen (reached through the
// shim, as Ganeti's node daemon reaches xl), its xenstored simulator,
// and ganeti-userdown's configuration. rescan is [events] rescan.
func (d *demo) newNode(name string, cl *cluster, rescan string) (*node, error) {
	short := strings.SplitN(name, ".", 2)[0]
	n := &node{d: d, name: name, cl: cl, dir: filepath.Join(d.dir, short)}
	n.etcXen = filepath.Join(n.dir, "etc", "xen")
	n.dumps = filepath.Join(n.dir, "dumps")
	n.state = filepath.Join(n.dir, "state")
	n.socket = filepath.Join(n.dir, "xenstored.socket")
	n.metrics = filepath.Join(n.dir, "node-exporter", "ganeti-userdown.prom")
	n.wdLog = filepath.Join(n.dir, "userdown-watchd.log")
	for _, p := range []string{n.etcXen, n.dumps, filepath.Join(n.dir, "sbin"), filepath.Join(n.dir, "real"),
		filepath.Join(n.dir, "sim"), filepath.Join(n.dir, "ssconf"), filepath.Dir(n.metrics)} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			return nil, err
		}
	}
	if err := os.Mkdir(n.state, 0o700); err != nil {
		return nil, err
	}
	// The real toolstack, diverted as the package does: the simulator,
	// which tells xenstored of each domain's end as Xen does.
	n.realXL = filepath.Join(n.dir, "real", "xl")
	wrapper := fmt.Sprintf("#!/bin/sh\nXENSIM_STATE=%s XENSIM_DUMP_DIR=%s XENSTORED_PATH=%s exec %s \"$@\"\n",
		filepath.Join(n.dir, "sim", "state.json"), filepath.Join(n.dir, "sim", "dump"), n.socket, filepath.Join(d.bin, "xensim"))
	if err := os.WriteFile(n.realXL, []byte(wrapper), 0o755); err != nil {
		return nil, err
	}
	// The shim in the toolstack's place, as the package links it:
	// userdown-shim called xl (it hands create and shutdown to
	// userdown-hvconfig beside it).
	n.xl = filepath.Join(n.dir, "sbin", "xl")
	if err := os.Symlink(filepath.Join(d.bin, "userdown-shim"), n.xl); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(n.dir, "ssconf", "ssconf_enabled_user_shutdown"), []byte("False\n"), 0o644); err != nil {
		return nil, err
	}
	n.config = filepath.Join(n.dir, "userdown.toml")
	toml := fmt.Sprintf(`# ganeti-userdown on the simulated node %s
[xen]
toolstack = "xl"
command = %q
config_dir = %q
reap_wait = "30s"

[cluster]
backend = "rapi"
node = %q
rapi_url = %q
rapi_ca = %q
rapi_credentials = %q
ssconf_dir = %q
timeout = "20s"
shutdown_timeout = "5s"

[crash]
dump_dir = %q

[state]
dir = %q

[events]
xenstore = %q
rescan = %q

[metrics]
textfile = %q
`, name, n.realXL, n.etcXen, name, cl.srv.URL, cl.pem, cl.creds, filepath.Join(n.dir, "ssconf"),
		n.dumps, n.state, n.socket, rescan, n.metrics)
	if err := os.WriteFile(n.config, []byte(toml), 0o644); err != nil {
		return nil, err
	}
	// The master's jobs reach this node's domains through the shim, as
	// Ganeti's node daemon does.
	if err := cl.eng.Store.Update(func(st *ganetifake.State) error {
		st.Toolstack = ganetifake.Toolstack{Command: n.xl, Env: []string{"USERDOWN_CONFIG=" + n.config}, ConfigDir: n.etcXen}
		return nil
	}); err != nil {
		return nil, err
	}
	d.nodes = append(d.nodes, n)
	return n, n.startXenstored()
}

// startXenstored runs the xenstored simulator and waits until it listens.
func (n *node) startXenstored() error {
	cmd := exec.Command(filepath.Join(n.d.bin, "xenstored"), "-socket", n.socket)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	line := make(chan string, 1)
	go func() {
		r := bufio.NewReader(out)
		l, _ := r.ReadString('\n')
		line <- l
		io.Copy(io.Discard, r)
	}()
	select {
	case l := <-line:
		if !strings.HasPrefix(l, "listening") {
			cmd.Process.Kill()
			cmd.Wait()
			return fmt.Errorf("xenstored simulator: %q", l)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		return errors.New("xenstored simulator: not listening within 10s")
	}
	n.xs = cmd
	return nil
}

// stopAll stops every process the demo started.
func (d *demo) stopAll() {
	for _, n := range d.nodes {
		if n.watchd != nil {
			n.stopDaemon()
		}
		if n.xs != nil {
			n.xs.Process.Signal(syscall.SIGTERM)
			n.xs.Wait()
			n.xs = nil
		}
	}
}

func (d *demo) tearDown(keep bool) {
	d.stopAll()
	for _, c := range d.clusters {
		c.srv.Close()
		c.eng.Close()
	}
	if d.dir == "" {
		return
	}
	if keep {
		fmt.Fprintf(d.out, "work directory kept: %s\n", d.dir)
		return
	}
	os.RemoveAll(d.dir)
}
