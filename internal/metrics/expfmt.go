// Package metrics keeps ganeti-userdown's Prometheus metrics: the totals
// of every run (the daemon's and the watcher hook's), persisted in the
// state directory, and node_exporter's textfile format they are written
// in.
package metrics

import (
	"bytes"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// Type is a metric family's type, as its # TYPE line says.
type Type string

// The types ganeti-userdown writes.
const (
	Counter   Type = "counter"
	Gauge     Type = "gauge"
	Histogram Type = "histogram"
)

// Label is one label pair of a sample.
type Label struct {
	Name, Value string
}

// Sample is one line of a family: the family's name plus Suffix (for a
// histogram's _bucket, _sum and _count), its labels and its value.
type Sample struct {
	Suffix string
	Labels []Label
	Value  float64
}

// Family is one metric family: its # HELP and # TYPE lines, then its
// samples in the order given.
type Family struct {
	Name    string
	Help    string
	Type    Type
	Samples []Sample
}

var (
	metricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelName  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// Format renders families in the Prometheus text exposition format
// (version 0.0.4, what node_exporter's textfile collector reads), without
// timestamps. It refuses invalid metric or label names rather than write
// a file the collector would reject whole.
func Format(families []Family) ([]byte, error) {
	var b bytes.Buffer
	seen := map[string]bool{}
	for _, f := range families {
		if !metricName.MatchString(f.Name) || strings.HasPrefix(f.Name, "__") {
			return nil, fmt.Errorf("metric name %q is not valid", f.Name)
		}
		if seen[f.Name] {
			return nil, fmt.Errorf("metric family %s given twice", f.Name)
		}
		seen[f.Name] = true
		switch f.Type {
		case Counter, Gauge, Histogram:
		default:
			return nil, fmt.Errorf("metric %s: unknown type %q", f.Name, f.Type)
		}
		fmt.Fprintf(&b, "# HELP %s %s\n", f.Name, escapeHelp(f.Help))
		fmt.Fprintf(&b, "# TYPE %s %s\n", f.Name, f.Type)
		for _, s := range f.Samples {
			b.WriteString(f.Name)
			b.WriteString(s.Suffix)
			if len(s.Labels) > 0 {
				b.WriteByte('{')
				for i, l := range s.Labels {
					if !labelName.MatchString(l.Name) || strings.HasPrefix(l.Name, "__") {
						return nil, fmt.Errorf("metric %s: label name %q is not valid", f.Name, l.Name)
					}
					if i > 0 {
						b.WriteByte(',')
					}
					fmt.Fprintf(&b, "%s=\"%s\"", l.Name, escapeLabel(l.Value))
				}
				b.WriteByte('}')
			}
			b.WriteByte(' ')
			b.WriteString(formatValue(s.Value))
			b.WriteByte('\n')
		}
	}
	return b.Bytes(), nil
}

// escapeHelp escapes a # HELP text: backslash and newline.
func escapeHelp(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}

// escapeLabel escapes a label value: backslash, double quote and newline.
func escapeLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

// formatValue prints a sample value as the format wants it: Go's
// shortest float, +Inf, -Inf, NaN.
func formatValue(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
