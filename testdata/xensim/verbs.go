package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"ganeti-userdown/testdata/xensim/xlout"
)

// validActions are the action names xl.cfg accepts.
var validActions = []string{"destroy", "restart", "rename-restart", "preserve", "coredump-destroy", "coredump-restart", "soft-reset"}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$`)

func (s *sim) create(args []string) error {
	o, rest, err := s.opts(args, "pf:qin", map[string]byte{"defconfig": 'f', "quiet": 'q', "dryrun": 'n', "ignore-global-affinity-masks": 'i'})
	if err != nil {
		return err
	}
	cfg := o['f']
	var extra []string
	for _, a := range rest {
		switch {
		case strings.Contains(a, "="):
			extra = append(extra, a)
		case cfg == "":
			cfg = a
		default:
			return fail(2, "Usage: %s create <ConfigFile> [options] [vars]\n", s.flavour)
		}
	}
	if cfg == "" {
		return fail(1, "Config file not specified and none in save file\n")
	}
	src, err := os.ReadFile(cfg)
	if err != nil {
		var pe *os.PathError
		msg := err.Error()
		if errors.As(err, &pe) {
			msg = pe.Err.Error()
		}
		if s.flavour == flavourXM {
			return fail(1, "Error: CONFIG_FILE '%s' does not exist or is unreadable: %s\n", cfg, msg)
		}
		return fail(3, "Failed to read config file: %s: %s\n", cfg, msg)
	}
	if len(extra) > 0 {
		src = append(src, fmt.Appendf(nil, "\n%s\n", strings.Join(extra, "\n"))...)
	}
	if s.flavour == flavourXL && o['q'] == "" {
		fmt.Fprintf(s.stderr, "Parsing config from %s\n", cfg)
	}
	vals, err := readConfig(cfg, src)
	if err != nil {
		if s.flavour == flavourXM {
			return fail(1, "Error: %v\n", err)
		}
		return fail(1, "%v\nFailed to parse config: Invalid argument\n", err)
	}
	str := func(key string) (string, bool) {
		v, ok := vals[key]
		return v, ok
	}
	name, ok := str("name")
	if !ok || name == "" {
		if s.flavour == flavourXM {
			return fail(1, "Error: Domain name must be specified.\n")
		}
		return fail(1, "Domain name must be specified.\n")
	}
	d := &domain{Name: name, Config: cfg, Source: string(src), MemMiB: 128, VCPUs: 1, Code: -1, Blocked: true, Actions: map[string]string{}}
	if v, ok := str("memory"); ok {
		if d.MemMiB, err = strconv.Atoi(v); err != nil || d.MemMiB <= 0 {
			return fail(1, "Invalid memory %q\n", v)
		}
	}
	if v, ok := str("vcpus"); ok {
		if d.VCPUs, err = strconv.Atoi(v); err != nil || d.VCPUs <= 0 {
			return fail(1, "Invalid vcpus %q\n", v)
		}
	}
	if v, ok := str("uuid"); ok {
		if !uuidRE.MatchString(v) {
			return fail(1, "Failed to parse UUID: %s\n", v)
		}
		d.UUID = canonicalUUID(v)
	} else {
		d.UUID = newUUID()
	}
	defaults := map[string]string{"on_poweroff": "destroy", "on_reboot": "restart", "on_watchdog": "destroy", "on_crash": "destroy", "on_soft_reset": "soft-reset"}
	if s.flavour == flavourXM {
		defaults = map[string]string{"on_poweroff": "destroy", "on_reboot": "restart", "on_crash": "restart"}
	}
	for k, def := range defaults {
		v, ok := str(k)
		if !ok {
			v = def
		}
		if !slices.Contains(validActions, v) {
			if s.flavour == flavourXM {
				return fail(1, "Error: Invalid value for %s: '%s'\n", k, v)
			}
			return fail(1, "Unknown %s action \"%s\" specified\n", k, v)
		}
		d.Actions[k] = v
	}
	if o['p'] != "" {
		d.Blocked, d.Paused = false, true
	}
	if o['n'] != "" {
		return nil // dry run: parsed, nothing created
	}
	return s.locked(func(st *state, now time.Time) error {
		if old := st.byName(name); old != nil {
			if s.flavour == flavourXM {
				return fail(1, "Error: VM name '%s' already in use by domain %d\n", name, old.ID)
			}
			return fail(3, "libxl: error: libxl_domain.c:81:libxl__domain_rename: Domain %d:Domain with name \"%s\" already exists.\n"+
				"libxl: error: libxl_create.c:1309:initiate_domain_create: Domain %d:cannot make domain: -6\n", st.NextID, name, st.NextID)
		}
		d.ID = st.NextID
		st.NextID++
		d.Created = now
		st.Domains = append(st.Domains, d)
		s.event("create", d, now, cfg)
		if s.flavour == flavourXM {
			fmt.Fprintf(s.stdout, "Using config file \"%s\".\nStarted domain %s (id=%d)\n", cfg, name, d.ID)
		}
		return nil
	})
}

func canonicalUUID(v string) string {
	h := strings.ToLower(strings.ReplaceAll(v, "-", ""))
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func (s *sim) list(args []string) error {
	o, rest, err := s.opts(args, "lvZcnh", map[string]byte{"long": 'l', "verbose": 'v', "context": 'Z', "cpupool": 'c', "numa": 'n', "help": 'h'})
	if err != nil {
		return err
	}
	if o['Z'] != "" || o['c'] != "" || o['n'] != "" || o['h'] != "" {
		return fail(2, "xensim: list option not simulated\n")
	}
	if s.flavour == flavourXM && o['v'] != "" {
		// xm's -v is the deprecated vcpu listing, not xl's verbose list.
		return fail(1, "xm list -v is deprecated.  Please use xm vcpu-list.\n")
	}
	if len(rest) > 1 {
		return fail(1, "Usage: %s list [options] [Domain, ...]\n", s.flavour)
	}
	return s.locked(func(st *state, now time.Time) error {
		doms := st.Domains
		if len(rest) == 1 {
			d, err := s.find(st, rest[0])
			var nd errNoDomid
			if errors.As(err, &nd) {
				return fail(1, "Error: Domain '%s' does not exist.\n", rest[0])
			}
			if err != nil {
				return err
			}
			doms = []*domain{d}
		}
		if o['l'] != "" {
			if s.flavour == flavourXM {
				s.stdout.Write(xmLong(doms, now))
				return nil
			}
			b, err := xlLong(doms)
			if err != nil {
				return err
			}
			s.stdout.Write(b)
			return nil
		}
		out := make([]xlout.Domain, len(doms))
		for i, d := range doms {
			out[i] = d.out(s.flavour, now)
		}
		if s.flavour == flavourXM {
			s.stdout.Write(xlout.XM(out))
		} else {
			s.stdout.Write(xlout.XL(o['v'] != "", out))
		}
		return nil
	})
}

// xlLongConfig is the part of libxl's domain_config that `xl list -l`
// prints and ganeti-userdown reads, in libxl's field order.
type xlLongConfig struct {
	CInfo struct {
		Type string `json:"type"`
		Name string `json:"name"`
		UUID string `json:"uuid"`
	} `json:"c_info"`
	BInfo struct {
		MaxVCPUs    int `json:"max_vcpus"`
		MaxMemKB    int `json:"max_memkb"`
		TargetMemKB int `json:"target_memkb"`
	} `json:"b_info"`
	OnPoweroff  string `json:"on_poweroff,omitempty"`
	OnReboot    string `json:"on_reboot,omitempty"`
	OnWatchdog  string `json:"on_watchdog,omitempty"`
	OnCrash     string `json:"on_crash,omitempty"`
	OnSoftReset string `json:"on_soft_reset,omitempty"`
}

// libxlAction spells an xl.cfg action as libxl's JSON does; the default,
// destroy, is left out (empty).
func libxlAction(v string) string {
	switch v {
	case "destroy", "":
		return ""
	case "rename-restart":
		return "restart_rename"
	}
	return strings.ReplaceAll(v, "-", "_")
}

// xlLong prints `xl list -l`: a JSON array, 4-space indented as yajl's
// beautifier does, of {"domid", "config"} for each domain that has a
// stored config (dom0 has none).
func xlLong(doms []*domain) ([]byte, error) {
	type entry struct {
		DomID  int          `json:"domid"`
		Config xlLongConfig `json:"config"`
	}
	entries := []entry{}
	for _, d := range doms {
		if d.ID == 0 {
			continue
		}
		var c xlLongConfig
		c.CInfo.Type, c.CInfo.Name, c.CInfo.UUID = "pv", d.Name, d.UUID
		c.BInfo.MaxVCPUs, c.BInfo.MaxMemKB, c.BInfo.TargetMemKB = d.VCPUs, d.MemMiB*1024, d.MemMiB*1024
		c.OnPoweroff = libxlAction(d.Actions["on_poweroff"])
		c.OnReboot = libxlAction(d.Actions["on_reboot"])
		c.OnWatchdog = libxlAction(d.Actions["on_watchdog"])
		c.OnCrash = libxlAction(d.Actions["on_crash"])
		c.OnSoftReset = libxlAction(d.Actions["on_soft_reset"])
		entries = append(entries, entry{DomID: d.ID, Config: c})
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "    ")
	if err := enc.Encode(entries); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// xmLong prints `xm list -l`: one (domain ...) S-expression per domain.
func xmLong(doms []*domain, now time.Time) []byte {
	var b bytes.Buffer
	for _, d := range doms {
		x := d.out(flavourXM, now)
		b.WriteString("(domain\n")
		fmt.Fprintf(&b, "    (domid %d)\n", d.ID)
		for _, k := range []string{"on_crash"} {
			if v, ok := d.Actions[k]; ok {
				fmt.Fprintf(&b, "    (%s %s)\n", k, v)
			}
		}
		fmt.Fprintf(&b, "    (uuid %s)\n", d.UUID)
		fmt.Fprintf(&b, "    (vcpus %d)\n", d.VCPUs)
		fmt.Fprintf(&b, "    (name %s)\n", sexpAtom(d.Name))
		for _, k := range []string{"on_poweroff", "on_reboot"} {
			if v, ok := d.Actions[k]; ok {
				fmt.Fprintf(&b, "    (%s %s)\n", k, v)
			}
		}
		fmt.Fprintf(&b, "    (memory %d)\n", d.MemMiB)
		fmt.Fprintf(&b, "    (state %s)\n", xlout.XMState(x))
		fmt.Fprintf(&b, "    (cpu_time %g)\n", x.CPUSeconds)
		b.WriteString(")\n")
	}
	return b.Bytes()
}

func sexpAtom(v string) string {
	if v != "" && !strings.ContainsAny(v, " \t\n()'\"\\") {
		return v
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// shutdown asks guests to shut down (code 0) or reboot (code 1).
func (s *sim) shutdown(args []string, code int) error {
	verb := map[int]string{0: "shutdown", 1: "reboot"}[code]
	o, rest, err := s.opts(args, "awF", map[string]byte{"all": 'a', "wait": 'w'})
	if err != nil {
		return err
	}
	all, wait := o['a'] != "", len(o['w'])
	if !all && len(rest) == 0 {
		return fail(1, "You must specify -a or a domain id.\n\n")
	}
	var targets []int
	err = s.locked(func(st *state, now time.Time) error {
		var doms []*domain
		if all {
			for _, d := range st.Domains {
				if d.ID != 0 {
					doms = append(doms, d)
				}
			}
		} else {
			d, err := s.find(st, rest[0])
			var nd errNoDomid
			if errors.As(err, &nd) {
				fmt.Fprintf(s.stderr, "%s domain %d\n", map[int]string{0: "Shutting down", 1: "Rebooting"}[code], nd.id)
				return fail(1, "libxl: error: libxl_domain.c:1750:libxl__domain_pvcontrol: Domain %d:Unable to get domain type\n%s failed (rc=-3)\n", nd.id, verb)
			}
			if err != nil {
				return err
			}
			if d.ID == 0 {
				return fail(1, "%s failed (rc=-3)\n", verb)
			}
			doms = []*domain{d}
		}
		for _, d := range doms {
			if s.flavour == flavourXL {
				fmt.Fprintf(s.stderr, "%s domain %d\n", map[int]string{0: "Shutting down", 1: "Rebooting"}[code], d.ID)
			}
			targets = append(targets, d.ID)
			if !d.alive() || d.Pending != nil {
				continue
			}
			delay, err := parseDuration(d.ShutdownDelay)
			if err != nil {
				return err
			}
			if d.ShutdownDelay == "" {
				if delay, err = parseDuration(os.Getenv("XENSIM_SHUTDOWN_DELAY")); err != nil {
					return fmt.Errorf("XENSIM_SHUTDOWN_DELAY: %w", err)
				}
			}
			d.Pending = &pending{Code: code, Requested: now, Due: now.Add(delay)}
			s.event(verb+"-request", d, now, delay.String())
		}
		s.settle(st, now)
		return nil
	})
	if err != nil || wait == 0 {
		return err
	}
	return s.waitFor(targets, wait == 1)
}

// waitFor polls until each domid has shut down (when shutdownCounts) or
// gone, as `xl shutdown -w` (-ww: death only) does. It runs until the
// caller's timeout kills it.
func (s *sim) waitFor(ids []int, shutdownCounts bool) error {
	if s.flavour == flavourXL {
		fmt.Fprintf(s.stderr, "Waiting for %d domains\n", len(ids))
	}
	left := slices.Clone(ids)
	for len(left) > 0 {
		err := s.locked(func(st *state, now time.Time) error {
			left = slices.DeleteFunc(left, func(id int) bool {
				d := st.byID(id)
				switch {
				case d == nil:
					if s.flavour == flavourXL {
						fmt.Fprintf(s.stderr, "Domain %d has been destroyed\n", id)
					}
					return true
				case shutdownCounts && !d.alive() && d.Code >= 0:
					if s.flavour == flavourXL {
						fmt.Fprintf(s.stderr, "Domain %d has been shut down, reason code %d\n", id, d.Code)
					}
					return true
				}
				return false
			})
			return nil
		})
		if err != nil {
			return err
		}
		if len(left) > 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

func (s *sim) destroy(args []string) error {
	o, rest, err := s.opts(args, "f", nil)
	if err != nil {
		return err
	}
	if err := s.needArgs("destroy", rest, 1); err != nil {
		return err
	}
	return s.locked(func(st *state, now time.Time) error {
		d, err := s.find(st, rest[0])
		var nd errNoDomid
		if errors.As(err, &nd) {
			return fail(1, "libxl: error: libxl_domain.c:1181:libxl__destroy_domid: Domain %[1]d:Non-existant domain\n"+
				"libxl: error: libxl_domain.c:1137:domain_destroy_callback: Domain %[1]d:Unable to destroy guest\n"+
				"libxl: error: libxl_domain.c:1062:domain_destroy_cb: Domain %[1]d:Destruction of domain failed\n"+
				"destroy failed (rc=-21)\n", nd.id)
		}
		if err != nil {
			return err
		}
		if d.ID == 0 {
			if s.flavour == flavourXM {
				return fail(1, "Error: Cannot destroy privileged domain 0\n")
			}
			if o['f'] == "" {
				return fail(1, "Not destroying domain 0; use -f to force.\n"+
					"This can only be done when using a disaggregated hardware domain and toolstack.\n\n")
			}
			return fail(1, "destroy failed (rc=-3)\n")
		}
		ref := d.ref(s.flavour)
		s.destroyed = &ref
		st.remove(d)
		s.event("destroy", d, now, "toolstack")
		return nil
	})
}

func (s *sim) dumpCore(args []string) error {
	_, rest, err := s.opts(args, "LCR", nil)
	if err != nil {
		return err
	}
	if err := s.needArgs("dump-core", rest, 2); err != nil {
		return err
	}
	return s.locked(func(st *state, now time.Time) error {
		d, err := s.find(st, rest[0])
		var nd errNoDomid
		if errors.As(err, &nd) {
			return fail(1, "libxl: error: libxl_domain.c:621:libxl_domain_core_dump: Domain %d:core dump failed\ncore dump failed (rc=-3)\n", nd.id)
		}
		if err != nil {
			return err
		}
		if err := writeCore(rest[1], d); err != nil {
			return fail(1, "libxl: error: libxl_domain.c:621:libxl_domain_core_dump: Domain %d:core dump failed: %v\ncore dump failed (rc=-3)\n", d.ID, err)
		}
		if s.flavour == flavourXM {
			fmt.Fprintf(s.stdout, "Dumping core of domain: %d ...\n", d.ID)
		}
		s.event("dump", d, now, rest[1])
		return nil
	})
}

func (s *sim) rename(args []string) error {
	_, rest, err := s.opts(args, "", nil)
	if err != nil {
		return err
	}
	if err := s.needArgs("rename", rest, 2); err != nil {
		return err
	}
	return s.locked(func(st *state, now time.Time) error {
		d, err := s.find(st, rest[0])
		var nd errNoDomid
		if errors.As(err, &nd) {
			return fail(1, "Can't rename domain '%s'.\n", rest[0])
		}
		if err != nil {
			return err
		}
		if other := st.byName(rest[1]); other != nil && other != d {
			if s.flavour == flavourXM {
				return fail(1, "Error: VM name '%s' already exists\n", rest[1])
			}
			return fail(1, "libxl: error: libxl_domain.c:81:libxl__domain_rename: Domain %d:Domain with name \"%s\" already exists.\nCan't rename domain '%s'.\n", d.ID, rest[1], rest[0])
		}
		old := d.Name
		d.Name = rest[1]
		s.event("rename", d, now, old)
		return nil
	})
}

func (s *sim) pause(args []string, paused bool) error {
	verb := map[bool]string{true: "pause", false: "unpause"}[paused]
	_, rest, err := s.opts(args, "", nil)
	if err != nil {
		return err
	}
	if err := s.needArgs(verb, rest, 1); err != nil {
		return err
	}
	return s.locked(func(st *state, now time.Time) error {
		d, err := s.find(st, rest[0])
		var nd errNoDomid
		if errors.As(err, &nd) {
			return fail(1, "libxl: error: libxl_domain.c:570:libxl_domain_%s: Domain %d:%sing domain: No such process\n", verb, nd.id, verb)
		}
		if err != nil {
			return err
		}
		if d.alive() {
			d.Paused = paused
			d.Blocked = !paused
		}
		s.settle(st, now)
		return nil
	})
}

func (s *sim) info(args []string) error {
	return s.locked(func(st *state, now time.Time) error {
		total, used := 16384, 0
		for _, d := range st.Domains {
			used += d.MemMiB
		}
		host, _ := os.Hostname()
		lines := [][2]string{
			{"host", host}, {"release", "6.1.0-xensim"}, {"machine", "x86_64"},
			{"nr_cpus", "2"}, {"max_cpu_id", "1"}, {"nr_nodes", "1"},
			{"cores_per_socket", "2"}, {"threads_per_core", "1"},
			{"total_memory", strconv.Itoa(total)}, {"free_memory", strconv.Itoa(max(total-used, 0))},
			{"xen_major", "4"}, {"xen_minor", "17"}, {"xen_extra", ".5"}, {"xen_version", "4.17.5"},
			{"xen_caps", "xen-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p hvm-3.0-x86_64"},
			{"xen_scheduler", "credit2"}, {"xen_pagesize", "4096"},
			{"xend_config_format", "4"},
		}
		for _, l := range lines {
			if len(args) > 0 && l[0] != args[0] {
				continue
			}
			if len(args) > 0 {
				fmt.Fprintln(s.stdout, l[1])
				continue
			}
			fmt.Fprintf(s.stdout, "%-23s: %s\n", l[0], l[1])
		}
		return nil
	})
}

// simVerb implements the test-only verbs.
func (s *sim) simVerb(args []string) error {
	if len(args) == 0 {
		return fail(2, "usage: sim poweroff|reboot|crash|watchdog|soft-reset DOM | sim set DOM KEY=VALUE... | sim state\n")
	}
	codes := map[string]int{"poweroff": 0, "reboot": 1, "crash": 3, "watchdog": 4, "soft-reset": 5}
	switch verb := args[0]; {
	case verb == "state":
		return s.locked(func(st *state, now time.Time) error {
			enc := json.NewEncoder(s.stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(st)
		})
	case verb == "set":
		if len(args) < 3 {
			return fail(2, "usage: sim set DOM KEY=VALUE...\n")
		}
		return s.locked(func(st *state, now time.Time) error {
			d, err := s.find(st, args[1])
			if err != nil {
				var nd errNoDomid
				if errors.As(err, &nd) {
					return fail(1, "sim: no domain %d\n", nd.id)
				}
				return err
			}
			for _, kv := range args[2:] {
				if err := s.set(st, d, kv, now); err != nil {
					return err
				}
			}
			s.settle(st, now)
			return nil
		})
	default:
		code, ok := codes[verb]
		if !ok || len(args) != 2 {
			return fail(2, "usage: sim poweroff|reboot|crash|watchdog|soft-reset DOM\n")
		}
		return s.locked(func(st *state, now time.Time) error {
			d, err := s.find(st, args[1])
			if err != nil {
				var nd errNoDomid
				if errors.As(err, &nd) {
					return fail(1, "sim: no domain %d\n", nd.id)
				}
				return err
			}
			if d.ID == 0 || !d.alive() || d.Paused {
				return fail(1, "sim: domain %s (%d) is not running, it cannot %s\n", d.Name, d.ID, verb)
			}
			d.Pending = nil
			s.guestShutdown(st, d, code, now)
			return nil
		})
	}
}

// set applies one `sim set` knob.
func (s *sim) set(st *state, d *domain, kv string, now time.Time) error {
	k, v, ok := strings.Cut(kv, "=")
	if !ok {
		return fail(2, "sim set: want KEY=VALUE, got %q\n", kv)
	}
	switch k {
	case "shutdown-delay":
		if _, err := parseDuration(v); err != nil {
			return fail(2, "sim set: %v\n", err)
		}
		d.ShutdownDelay = v
	case "ignore-shutdown":
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fail(2, "sim set: ignore-shutdown: %v\n", err)
		}
		d.IgnoreShutdown = b
	case "state":
		if err := d.setLetters(s.flavour, v); err != nil {
			return fail(2, "sim set: %v\n", err)
		}
		if !d.alive() && d.Stopped == nil {
			t := now
			d.Stopped = &t
		}
	case "on_poweroff", "on_reboot", "on_watchdog", "on_crash", "on_soft_reset":
		if !slices.Contains(validActions, v) {
			return fail(2, "sim set: %s: unknown action %q\n", k, v)
		}
		d.Actions[k] = v
	default:
		return fail(2, "sim set: unknown key %q (shutdown-delay, ignore-shutdown, state, on_*)\n", k)
	}
	return nil
}
