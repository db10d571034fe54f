// Package toolstack is what the toolstack shim needs before anything
// else: it reads a toolstack command line the way xl (or xm) does
// (Analyze, pure) and finds the real toolstack to run (ChooseToolstack).
// It imports nothing heavy, so that the shim binary installed as xl
// starts as fast as a Go program can.
package toolstack

import "strings"

// Plan is what the shim makes of a toolstack command line.
type Plan struct {
	// Args is the command line given to the toolstack, without argv[0];
	// the real toolstack gets exactly these.
	Args []string
	// Verb is the toolstack command ("create", "shutdown", …) with a
	// prefix abbreviation expanded as xl does; "" when there is none.
	Verb string
	// VerbIndex is the index of the verb in Args (-1 without a verb).
	VerbIndex int
	// Config is, for create, the domain config file the toolstack will
	// read ("" when none or when the command line is not understood).
	Config string
	// Domain is, for shutdown and reboot, the domain argument.
	Domain string
	// Wait is set for `shutdown -w` (the caller waits for the domain to
	// shut down); All for `shutdown -a`.
	Wait, All bool
	// Problem says why the command line was not understood; the
	// toolstack will then complain about it itself, and the shim does
	// nothing but exec it.
	Problem string
}

// Prepares reports whether the shim has something to do before the
// toolstack runs this command line: rewrite the config of a create,
// record the intent of a shutdown. Every other command line is passed
// straight through.
func (p Plan) Prepares() bool {
	return p.Problem == "" && (p.Verb == "create" || p.Verb == "shutdown")
}

// xlGlobal is xl's own optstring before the verb: flags only, and option
// processing stops at the verb.
var xlGlobal = optSpec{short: "vftTN"}

var help = longOpt{"help", false, 'h'}

// createSpec is `xl create`'s options (xm create's -f/--defconfig agree).
var createSpec = optSpec{
	short: "AFVcdef:inpq",
	long: []longOpt{
		{"defconfig", true, 'f'},
		{"dryrun", false, 'n'},
		{"ignore-global-affinity-masks", false, 'i'},
		{"quiet", false, 'q'},
		{"vncviewer", false, 'V'},
		{"vncviewer-autopass", false, 'A'},
		help,
	},
}

// shutdownSpec is the options of `xl shutdown` and `xl reboot`.
var shutdownSpec = optSpec{
	short: "awF",
	long:  []longOpt{{"all", false, 'a'}, {"wait", false, 'w'}, help},
}

// xlVerbs are the commands of xl 4.17 in its own table order: xl accepts
// any unique prefix of them.
var xlVerbs = strings.Fields(`create config-update list destroy shutdown reboot
	pci-attach pci-detach pci-list pci-assignable-add pci-assignable-remove
	pci-assignable-list pause unpause console vncviewer save migrate restore
	migrate-receive dump-core cd-insert cd-eject mem-max mem-set button-press
	vcpu-list vcpu-pin vcpu-set vm-list info sharing sched-credit
	sched-credit2 sched-rtds domid domname rename trigger sysrq debug-keys
	set-parameters dmesg top network-attach network-list network-detach
	channel-list block-attach block-list block-detach vtpm-attach vtpm-list
	vtpm-detach vkb-attach vkb-list vkb-detach vdispl-attach vdispl-list
	vdispl-detach vsnd-attach vsnd-list vsnd-detach uptime claims
	cpupool-create cpupool-list cpupool-destroy cpupool-rename
	cpupool-cpu-add cpupool-cpu-remove cpupool-migrate cpupool-numa-split
	getenforce setenforce loadpolicy remus devd psr-hwinfo psr-cmt-attach
	psr-cmt-detach psr-cmt-show psr-cat-set psr-cat-show psr-mba-set
	psr-mba-show usbctrl-attach usbctrl-detach usbdev-attach usbdev-detach
	usb-list qemu-monitor-command`)

// expandVerb returns the xl command that s names: an exact name, or a
// prefix of exactly one name; "" otherwise.
func expandVerb(s string) string {
	found := ""
	for _, v := range xlVerbs {
		if v == s {
			return v
		}
		if strings.HasPrefix(v, s) {
			if found != "" {
				return ""
			}
			found = v
		}
	}
	return found
}

// Analyze reads a toolstack command line (without argv[0]) the way the
// toolstack named flavour ("xl" or "xm") reads it. posix reports whether
// POSIXLY_CORRECT is set in the environment, which stops GNU getopt at
// the first operand.
func Analyze(flavour string, args []string, posix bool) Plan {
	p := Plan{Args: args, VerbIndex: -1}
	verbAt := 0
	if flavour == "xl" {
		opts, ops, err := getopt(args, xlGlobal, true)
		if err != nil {
			p.Problem = "global options: " + err.Error()
			return p
		}
		_ = opts
		if len(ops) == 0 {
			p.Problem = "no command"
			return p
		}
		verbAt = ops[0].index
	} else if len(args) == 0 {
		p.Problem = "no command"
		return p
	}
	p.VerbIndex = verbAt
	word := args[verbAt]
	if flavour == "xl" {
		p.Verb = expandVerb(word)
		if p.Verb == "" {
			p.Problem = "unknown or ambiguous command " + word
			return p
		}
	} else {
		p.Verb = word
	}
	rest := args[verbAt+1:]
	switch p.Verb {
	case "create":
		p.analyzeCreate(rest, posix)
	case "shutdown", "reboot":
		p.analyzeShutdown(rest, posix)
	}
	return p
}

// analyzeCreate finds the config file of `create`: a first argument that
// is neither an option nor key=value; else -f/--defconfig (the last one
// given wins); else the first operand without '='. A second config file
// is an error to the toolstack.
func (p *Plan) analyzeCreate(rest []string, posix bool) {
	cfg := ""
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") && !strings.Contains(rest[0], "=") {
		cfg = rest[0]
		rest = rest[1:]
	}
	opts, ops, err := getopt(rest, createSpec, posix)
	if err != nil {
		p.Problem = "create: " + err.Error()
		return
	}
	for _, o := range opts {
		switch o.val {
		case 'h':
			p.Problem = "create: --help"
			return
		case 'f':
			cfg = o.arg
		}
	}
	for _, op := range ops {
		if strings.Contains(op.text, "=") {
			continue // key=value overrides are the toolstack's business
		}
		if cfg != "" {
			p.Problem = "create: more than one config file"
			return
		}
		cfg = op.text
	}
	if cfg == "" {
		p.Problem = "create: no config file"
		return
	}
	p.Config = cfg
}

// analyzeShutdown reads `shutdown [-a] [-w] [-F] DOMAIN` (and reboot).
func (p *Plan) analyzeShutdown(rest []string, posix bool) {
	opts, ops, err := getopt(rest, shutdownSpec, posix)
	if err != nil {
		p.Problem = p.Verb + ": " + err.Error()
		return
	}
	for _, o := range opts {
		switch o.val {
		case 'h':
			p.Problem = p.Verb + ": --help"
			return
		case 'a':
			p.All = true
		case 'w':
			p.Wait = true
		}
	}
	if len(ops) > 0 {
		p.Domain = ops[0].text
	} else if !p.All {
		p.Problem = p.Verb + ": no domain"
	}
}
