package toolstack

import (
	"errors"
	"strings"
)

// optSpec describes a command's options the way getopt_long(3) is told
// them: short is the optstring ("f:" takes an argument), long the long
// options.
type optSpec struct {
	short string
	long  []longOpt
}

type longOpt struct {
	name   string
	hasArg bool
	val    byte
}

// option is one option found on the command line.
type option struct {
	val byte
	arg string
}

// operand is a non-option argument and its index in the argument list.
type operand struct {
	index int
	text  string
}

// takesArg reports whether short option c exists and takes an argument.
func (s optSpec) takesArg(c byte) (known, hasArg bool) {
	i := strings.IndexByte(s.short, c)
	if c == ':' || i < 0 {
		return false, false
	}
	return true, i+1 < len(s.short) && s.short[i+1] == ':'
}

// lookupLong finds a long option by exact name or unique prefix, as GNU
// getopt_long does (prefixes of several options that differ are
// ambiguous).
func (s optSpec) lookupLong(name string) (longOpt, error) {
	var found *longOpt
	ambiguous := false
	for i := range s.long {
		o := &s.long[i]
		if o.name == name {
			return *o, nil
		}
		if strings.HasPrefix(o.name, name) {
			if found != nil && (found.hasArg != o.hasArg || found.val != o.val) {
				ambiguous = true
			}
			if found == nil {
				found = o
			}
		}
	}
	switch {
	case ambiguous:
		return longOpt{}, errors.New("option --" + name + " is ambiguous")
	case found == nil:
		return longOpt{}, errors.New("unknown option --" + name)
	}
	return *found, nil
}

// getopt splits args as GNU getopt_long does: options may come after
// operands unless posix is set (POSIXLY_CORRECT, or an optstring starting
// with '+'), "--" ends the options, "-" is an operand. An unknown option
// or a missing argument is an error, as it is for the toolstack.
func getopt(args []string, spec optSpec, posix bool) ([]option, []operand, error) {
	var opts []option
	var ops []operand
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			for j := i + 1; j < len(args); j++ {
				ops = append(ops, operand{j, args[j]})
			}
			return opts, ops, nil
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			lo, err := spec.lookupLong(name)
			if err != nil {
				return nil, nil, err
			}
			o := option{val: lo.val}
			switch {
			case lo.hasArg && hasVal:
				o.arg = val
			case lo.hasArg:
				if i+1 >= len(args) {
					return nil, nil, errors.New("option --" + lo.name + " needs an argument")
				}
				i++
				o.arg = args[i]
			case hasVal:
				return nil, nil, errors.New("option --" + lo.name + " takes no argument")
			}
			opts = append(opts, o)
		case len(a) > 1 && a[0] == '-':
			for j := 1; j < len(a); j++ {
				c := a[j]
				known, hasArg := spec.takesArg(c)
				if !known {
					return nil, nil, errors.New("unknown option -" + string(rune(c)))
				}
				o := option{val: c}
				if hasArg {
					if j+1 < len(a) {
						o.arg = a[j+1:]
					} else if i+1 < len(args) {
						i++
						o.arg = args[i]
					} else {
						return nil, nil, errors.New("option -" + string(rune(c)) + " needs an argument")
					}
					opts = append(opts, o)
					break
				}
				opts = append(opts, o)
			}
		default:
			if posix {
				for j := i; j < len(args); j++ {
					ops = append(ops, operand{j, args[j]})
				}
				return opts, ops, nil
			}
			ops = append(ops, operand{i, a})
		}
	}
	return opts, ops, nil
}
