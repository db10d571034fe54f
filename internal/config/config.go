// Package config loads the ganeti-userdown configuration file
// (/etc/ganeti/userdown.toml): the TOML document described in the design,
// where every key has a default and every unknown key or bad value is an
// error that names the file and the key.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"ganeti-userdown/internal/configfile"
	"ganeti-userdown/internal/trust"
)

// DefaultPath is where the configuration lives on a node.
const DefaultPath = configfile.DefaultPath

// EnvVar names the environment variable that overrides DefaultPath (see
// configfile.EnvVar: honoured as root too, under the same trust check).
const EnvVar = configfile.EnvVar

// Config is the whole configuration of ganeti-userdown on one node.
type Config struct {
	Xen     Xen     `toml:"xen"`
	Actions Actions `toml:"actions"`
	Cluster Cluster `toml:"cluster"`
	Policy  Policy  `toml:"policy"`
	Crash   Crash   `toml:"crash"`
	State   State   `toml:"state"`
	Events  Events  `toml:"events"`
	Metrics Metrics `toml:"metrics"`

	// Path is the file the configuration was read from, or "" when only
	// the built-in defaults apply.
	Path string `toml:"-"`
}

// Xen says which toolstack runs the domains of this node and how to call it.
type Xen struct {
	// Toolstack is "xl" or "xm": it selects the list format and the
	// meaning of the state letters.
	Toolstack string `toml:"toolstack"`
	// Command is the real toolstack binary (the diverted one when the
	// shim is installed).
	Command string `toml:"command"`
	// ConfigDir is where Ganeti writes instance configs (/etc/xen).
	ConfigDir string `toml:"config_dir"`
	// Timeout bounds every toolstack call made by ganeti-userdown itself.
	Timeout Duration `toml:"timeout"`
	// ReapWait bounds how long the shim's reaper waits for a domain that
	// Ganeti asked to shut down without waiting (xl shutdown without -w:
	// Ganeti 2.9.0 and 2.9.1) to reach its preserved state.
	ReapWait Duration `toml:"reap_wait"`
}

// Actions are the domain actions written into every domain config. An
// empty value leaves that key alone.
type Actions struct {
	OnPoweroff string `toml:"on_poweroff"`
	OnCrash    string `toml:"on_crash"`
	OnShutdown string `toml:"on_shutdown"`
}

// Cluster says how to reach the Ganeti master.
type Cluster struct {
	// Backend is "rapi" (every node) or "cli" (the master only).
	Backend string `toml:"backend"`
	// Node is this node's Ganeti name; empty means the host's FQDN.
	Node string `toml:"node"`
	// RAPIURL is the master's RAPI; empty means https://<master>:5080
	// with the master read from ssconf.
	RAPIURL string `toml:"rapi_url"`
	// RAPICredentials holds "user password" on one line; it must not be
	// readable by group or others.
	RAPICredentials string `toml:"rapi_credentials"`
	// RAPICA is the certificate the RAPI server must present (Ganeti's
	// self-signed rapi.pem), pinned rather than checked by host name; a
	// file group or others may write is refused.
	RAPICA string `toml:"rapi_ca"`
	// GntInstance and GntDebug are the CLI backend's commands.
	GntInstance string `toml:"gnt_instance"`
	GntDebug    string `toml:"gnt_debug"`
	// Timeout bounds each request to the master (each attempt of it:
	// reads are tried up to 4 times), each command of the cli backend and
	// each wait for a job.
	Timeout Duration `toml:"timeout"`
	// RunTimeout bounds everything one run (of userdown-detect,
	// userdown-destroy, the hooks or one pass of the event daemon) asks
	// of the master, every attempt, retry and job wait together.
	RunTimeout Duration `toml:"run_timeout"`
	// SsconfDir is Ganeti's data dir, holding the ssconf_* files.
	SsconfDir string `toml:"ssconf_dir"`
	// ShutdownTimeout is the timeout given to Ganeti's instance shutdown
	// when marking an instance down. It is always positive: 0 means "no
	// timeout" to Ganeti 3.x and "destroy at once" to Ganeti 2.9.
	ShutdownTimeout Duration `toml:"shutdown_timeout"`
}

// Policy says what to do with a user shutdown.
type Policy struct {
	// Default is "down", "restart" or "ignore"; the instance tag
	// userdown:<policy> overrides it.
	Default string `toml:"default"`
	// Settle is the minimum age of a shutdown observation before acting
	// on it (xm cannot tell a poweroff from a reboot in flight).
	Settle Duration `toml:"settle"`
}

// Crash says what to do with crashed domains before destroying them.
type Crash struct {
	// DumpDir, when set, receives a core dump of every crashed domain.
	DumpDir string `toml:"dump_dir"`
	// Keep is how many dumps are kept per instance.
	Keep int `toml:"keep"`
}

// State says where ganeti-userdown keeps its own records.
type State struct {
	// Dir holds the intents (intents/), the observations of preserved
	// domains (observations.json), the run lock (run.lock), the event
	// daemon's status (watchd.json) and the metrics' totals
	// (metrics.json).
	Dir string `toml:"dir"`
	// IntentTTL is how long an intent stays live when nothing clears it.
	IntentTTL Duration `toml:"intent_ttl"`
}

// Events configure userdown-watchd, the daemon that acts on Xen's
// domain events instead of waiting for the next watcher run.
type Events struct {
	// Enabled runs the daemon; the watcher hook starts it again when it
	// is enabled and not running.
	Enabled bool `toml:"enabled"`
	// XenStore is xenstored's Unix socket; empty means $XENSTORED_PATH,
	// else /run/xenstored/socket.
	XenStore string `toml:"xenstore"`
	// Rescan is the interval of the full scan made even without events,
	// so a lost event costs at most that.
	Rescan Duration `toml:"rescan"`
	// Debounce coalesces the events of a burst into one scan.
	Debounce Duration `toml:"debounce"`
}

// Metrics says where the Prometheus metrics go.
type Metrics struct {
	// Textfile is the file node_exporter's textfile collector reads. It
	// is written only when its directory exists; empty writes none.
	Textfile string `toml:"textfile"`
}

// Duration is a time.Duration written in TOML as a Go duration string
// such as "30s" or "5m".
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("not a duration (want e.g. \"30s\"): %q", string(b))
	}
	d.Duration = v
	return nil
}

// MarshalText prints the duration as Go does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }

// Default returns the configuration used when a key is absent.
func Default() Config {
	return Config{
		Xen: Xen{
			Toolstack: "xl",
			Command:   "/usr/sbin/xl",
			ConfigDir: "/etc/xen",
			Timeout:   Duration{30 * time.Second},
			ReapWait:  Duration{10 * time.Minute},
		},
		Actions: Actions{
			OnPoweroff: "preserve",
			OnCrash:    "preserve",
			OnShutdown: "preserve",
		},
		Cluster: Cluster{
			Backend:         "rapi",
			RAPICredentials: "/etc/ganeti/userdown-rapi.secret",
			RAPICA:          "/var/lib/ganeti/rapi.pem",
			GntInstance:     "/usr/sbin/gnt-instance",
			GntDebug:        "/usr/sbin/gnt-debug",
			Timeout:         Duration{30 * time.Second},
			RunTimeout:      Duration{2 * time.Minute},
			SsconfDir:       "/var/lib/ganeti",
			ShutdownTimeout: Duration{10 * time.Second},
		},
		Policy: Policy{
			Default: "down",
			Settle:  Duration{0},
		},
		Crash: Crash{Keep: 3},
		State: State{
			Dir:       "/var/lib/ganeti-userdown",
			IntentTTL: Duration{time.Hour},
		},
		Events: Events{
			Enabled:  true,
			Rescan:   Duration{time.Minute},
			Debounce: Duration{200 * time.Millisecond},
		},
		Metrics: Metrics{
			Textfile: "/var/lib/prometheus/node-exporter/ganeti-userdown.prom",
		},
	}
}

// Resolve returns the configuration path to use (see configfile.Resolve).
func Resolve(flag string, getenv func(string) string) (path string, explicit bool) {
	return configfile.Resolve(flag, getenv)
}

// MaxFileSize bounds the configuration file (the packaged one is 3 KiB).
const MaxFileSize = configfile.MaxSize

// Load reads the configuration at path. When explicit is false and the
// file does not exist, the defaults are returned. Running as root, the
// file and the commands it names ([xen] command; gnt_instance and
// gnt_debug with the cli backend) must be root's (see package trust:
// owned by root and not writable by group or others, nor any directory on
// the way): anyone who could write them could make root run anything.
// Only a regular file is read, without blocking.
func Load(path string, explicit bool) (Config, error) {
	c, err := Read(path, explicit)
	if err != nil {
		return Config{}, err
	}
	if err := CheckCommand("[xen] command", c.Xen.Command); err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	if c.Cluster.Backend == "cli" {
		for _, k := range []struct{ key, command string }{
			{"[cluster] gnt_instance", c.Cluster.GntInstance},
			{"[cluster] gnt_debug", c.Cluster.GntDebug},
		} {
			if err := CheckCommand(k.key, k.command); err != nil {
				return Config{}, fmt.Errorf("config %s: %w", path, err)
			}
		}
	}
	return c, nil
}

// Read is Load without the check of [xen] command: the shim, which must
// reach a toolstack even when that one cannot be run, checks it itself.
func Read(path string, explicit bool) (Config, error) {
	f, err := trust.ReadFile(path, MaxFileSize)
	if err != nil {
		if !explicit && errors.Is(err, fs.ErrNotExist) {
			return Default(), nil
		}
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return Parse(path, f.Data)
}

// CheckCommand refuses, running as root, a command (named by key, such as
// "[xen] command") that root must not run (see trust.Check). A command
// that does not exist passes: running it fails, and doctor says so.
func CheckCommand(key, command string) error {
	if _, err := trust.Check(command); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s %s: %w", key, command, err)
	}
	return nil
}

// LoadFrom resolves the configuration path from a --config flag value and
// the environment (see Resolve) and loads it (see Load).
func LoadFrom(flag string, getenv func(string) string) (Config, error) {
	path, explicit := Resolve(flag, getenv)
	return Load(path, explicit)
}

// Parse decodes a configuration document; name is used in error messages.
func Parse(name string, b []byte) (Config, error) {
	if c, ok := parseSimple(b); ok {
		c.Path = name
		if err := c.Validate(); err != nil {
			return Config{}, fmt.Errorf("config %s: %w", name, err)
		}
		return c, nil
	}
	return parseTOML(name, b)
}

// parseTOML is Parse with the full TOML decoder.
func parseTOML(name string, b []byte) (Config, error) {
	c := Default()
	md, err := toml.Decode(string(b), &c)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			key := ""
			if pe.LastKey != "" {
				key = " (key " + pe.LastKey + ")"
			}
			return Config{}, fmt.Errorf("config %s: line %d%s: %s", name, pe.Position.Line, key, pe.Message)
		}
		return Config{}, fmt.Errorf("config %s: %w", name, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return Config{}, fmt.Errorf("config %s: unknown key %s", name, strings.Join(keys, ", "))
	}
	c.Path = name
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("config %s: %w", name, err)
	}
	return c, nil
}

// xlActions are the values xl.cfg accepts for on_poweroff and friends.
var xlActions = map[string]bool{
	"destroy": true, "restart": true, "rename-restart": true, "preserve": true,
	"coredump-destroy": true, "coredump-restart": true, "soft-reset": true,
}

// Validate checks every value; the error names the key.
func (c *Config) Validate() error {
	var errs []string
	bad := func(key, format string, a ...any) {
		errs = append(errs, key+": "+fmt.Sprintf(format, a...))
	}
	oneOf := func(key, v string, allowed ...string) {
		for _, a := range allowed {
			if v == a {
				return
			}
		}
		bad(key, "must be one of %s, got %q", strings.Join(quoteAll(allowed), ", "), v)
	}
	abs := func(key, v string, emptyOK bool) {
		if v == "" && emptyOK {
			return
		}
		if !filepath.IsAbs(v) {
			bad(key, "must be an absolute path, got %q", v)
		}
	}
	positive := func(key string, d Duration) {
		if d.Duration <= 0 {
			bad(key, "must be positive, got %q", d.Duration.String())
		}
	}

	oneOf("[xen] toolstack", c.Xen.Toolstack, "xl", "xm")
	abs("[xen] command", c.Xen.Command, false)
	abs("[xen] config_dir", c.Xen.ConfigDir, false)
	positive("[xen] timeout", c.Xen.Timeout)
	positive("[xen] reap_wait", c.Xen.ReapWait)

	for _, kv := range []struct{ key, v string }{
		{"[actions] on_poweroff", c.Actions.OnPoweroff},
		{"[actions] on_crash", c.Actions.OnCrash},
		{"[actions] on_shutdown", c.Actions.OnShutdown},
	} {
		if kv.v != "" && !xlActions[kv.v] {
			names := make([]string, 0, len(xlActions))
			for a := range xlActions {
				names = append(names, a)
			}
			sort.Strings(names)
			bad(kv.key, "must be empty or one of %s, got %q", strings.Join(quoteAll(names), ", "), kv.v)
		}
	}

	oneOf("[cluster] backend", c.Cluster.Backend, "rapi", "cli")
	if c.Cluster.Node != "" && strings.ContainsAny(c.Cluster.Node, " \t/") {
		bad("[cluster] node", "not a node name: %q", c.Cluster.Node)
	}
	if c.Cluster.RAPIURL != "" && !strings.HasPrefix(c.Cluster.RAPIURL, "https://") {
		bad("[cluster] rapi_url", "must start with https://, got %q", c.Cluster.RAPIURL)
	}
	abs("[cluster] rapi_credentials", c.Cluster.RAPICredentials, false)
	abs("[cluster] rapi_ca", c.Cluster.RAPICA, false)
	abs("[cluster] gnt_instance", c.Cluster.GntInstance, false)
	abs("[cluster] gnt_debug", c.Cluster.GntDebug, false)
	abs("[cluster] ssconf_dir", c.Cluster.SsconfDir, false)
	positive("[cluster] timeout", c.Cluster.Timeout)
	positive("[cluster] run_timeout", c.Cluster.RunTimeout)
	if c.Cluster.ShutdownTimeout.Duration < time.Second {
		bad("[cluster] shutdown_timeout", "must be at least 1s (0 means no timeout to Ganeti 3.x and destroy at once to 2.9), got %q", c.Cluster.ShutdownTimeout.Duration.String())
	} else if c.Cluster.ShutdownTimeout.Duration%time.Second != 0 {
		bad("[cluster] shutdown_timeout", "must be whole seconds, got %q", c.Cluster.ShutdownTimeout.Duration.String())
	}

	oneOf("[policy] default", c.Policy.Default, "down", "restart", "ignore")
	if c.Policy.Settle.Duration < 0 {
		bad("[policy] settle", "must not be negative, got %q", c.Policy.Settle.Duration.String())
	}

	abs("[crash] dump_dir", c.Crash.DumpDir, true)
	if c.Crash.Keep < 1 {
		bad("[crash] keep", "must be at least 1, got %d", c.Crash.Keep)
	}

	abs("[state] dir", c.State.Dir, false)
	positive("[state] intent_ttl", c.State.IntentTTL)

	abs("[events] xenstore", c.Events.XenStore, true)
	if c.Events.Rescan.Duration < time.Second {
		bad("[events] rescan", "must be at least 1s, got %q", c.Events.Rescan.Duration.String())
	}
	if c.Events.Debounce.Duration < 0 || c.Events.Debounce.Duration > 10*time.Second {
		bad("[events] debounce", "must be between 0s and 10s, got %q", c.Events.Debounce.Duration.String())
	}
	abs("[metrics] textfile", c.Metrics.Textfile, true)
	if c.Metrics.Textfile != "" && !strings.HasSuffix(c.Metrics.Textfile, ".prom") {
		bad("[metrics] textfile", "must end in .prom (node_exporter reads only those), got %q", c.Metrics.Textfile)
	}

	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// ActionList returns the configured actions in a stable order, leaving out
// empty ones: the list given to the config rewriter.
func (a Actions) ActionList() []KeyValue {
	var out []KeyValue
	for _, kv := range []KeyValue{
		{"on_poweroff", a.OnPoweroff},
		{"on_crash", a.OnCrash},
		{"on_shutdown", a.OnShutdown},
	} {
		if kv.Value != "" {
			out = append(out, kv)
		}
	}
	return out
}

// KeyValue is one action key and the value it must have.
type KeyValue struct {
	Key   string
	Value string
}

// NodeName returns this node's Ganeti name: [cluster] node when set, else
// the host's fully qualified domain name, as Ganeti itself determines it.
func (c *Cluster) NodeName() (string, error) {
	if c.Node != "" {
		return c.Node, nil
	}
	return FQDN()
}

// FQDN returns the host's fully qualified name: the hostname when it
// already has a dot, else the canonical name the resolver gives for it.
func FQDN() (string, error) {
	h, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("hostname: %w", err)
	}
	if strings.Contains(h, ".") {
		return h, nil
	}
	if cname, err := net.LookupCNAME(h); err == nil && cname != "" {
		cname = strings.TrimSuffix(cname, ".")
		if strings.Contains(cname, ".") {
			return cname, nil
		}
	}
	return h, nil
}
