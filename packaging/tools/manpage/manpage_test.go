package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func readFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseHelpTop(t *testing.T) {
	h, err := ParseHelp(readFixture(t, "top.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := Help{
		Usage:       "userdown-hvconfig <command> [flags]",
		Description: []Para{{Text: "Keep Xen domain configs on preserve, and wrap the toolstack."}},
		Sections: []Section{{Title: "Flags", Entries: []Entry{
			{Term: "-h, --help", Text: "Show context-sensitive help."},
			{Term: "--config=PATH", Text: "Configuration file (default /etc/ganeti/userdown.toml, or $USERDOWN_CONFIG)."},
		}}},
		Commands: []Entry{
			{Term: "rewrite <file> ... [flags]", Text: "Rewrite domain configs so that Xen preserves powered-off and crashed domains. A long second sentence that will wrap around the terminal width for sure, doesn't it."},
			{Term: "doctor [flags]", Text: "Tell whether this node is protected."},
		},
	}
	if d := cmp.Diff(want, h); d != "" {
		t.Errorf("ParseHelp (-want +got):\n%s", d)
	}
	var words [][]string
	for _, c := range h.Commands {
		words = append(words, c.Words())
	}
	if d := cmp.Diff([][]string{{"rewrite"}, {"doctor"}}, words); d != "" {
		t.Errorf("command words (-want +got):\n%s", d)
	}
}

func TestParseHelpCommand(t *testing.T) {
	h, err := ParseHelp(readFixture(t, "rewrite.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := Help{
		Usage:       "userdown-hvconfig rewrite <file> ... [flags]",
		Description: []Para{{Text: "Rewrite domain configs so that Xen preserves powered-off and crashed domains. A long second sentence that will wrap around the terminal width for sure, doesn't it."}},
		Sections: []Section{
			{Title: "Arguments", Entries: []Entry{{Term: "<file> ...", Text: "Domain config files to rewrite."}}},
			{Title: "Flags", Entries: []Entry{
				{Term: "-h, --help", Text: "Show context-sensitive help."},
				{Term: "--config=PATH", Text: "Configuration file (default /etc/ganeti/userdown.toml, or $USERDOWN_CONFIG)."},
				{Term: "--dry-run", Text: "Print what would change; change nothing."},
			}},
		},
	}
	if d := cmp.Diff(want, h); d != "" {
		t.Errorf("ParseHelp (-want +got):\n%s", d)
	}
}

func TestParseHelpRejectsNonHelp(t *testing.T) {
	if _, err := ParseHelp("flag provided but not defined: -help\n"); err == nil {
		t.Error("ParseHelp accepted text without a Usage line")
	}
}

// TestGenerateRendersCleanRoff runs the page generator on a program that
// answers like a kong CLI and has groff check the page.
func TestGenerateRendersCleanRoff(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "userdown-hvconfig")
	abs, err := filepath.Abs("testdata/fakebin.sh")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(abs, bin); err != nil {
		t.Fatal(err)
	}
	page, err := Generate(context.Background(), bin, Meta{Version: "1.0", Date: "2026-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`.TH USERDOWN-HVCONFIG 8 "2026-11-25" "ganeti-userdown 1.0"`,
		"userdown\\-hvconfig \\- keep Xen domain configs on preserve, and wrap the toolstack\n",
		".SS \"rewrite <file> ... [flags]\"",
		".SS \"doctor [flags]\"",
		".B \\-\\-json\nPrint the report as JSON.",
		".B \\-\\-dry\\-run\n",
		".SH EXIT STATUS",
		".BR userdown\\-detect (8)",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q:\n%s", want, page)
		}
	}
	// Flags every command repeats are documented once, under OPTIONS.
	if n := strings.Count(page, "\\-\\-config=PATH"); n != 1 {
		t.Errorf("--config documented %d times, want once", n)
	}
	groff, err := exec.LookPath("groff")
	if err != nil {
		t.Fatalf("groff not found (apt-get install groff-base): %v", err)
	}
	cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z")
	cmd.Stdin = strings.NewReader(page)
	out, err := cmd.CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("groff -man -ww: %v\n%s\npage:\n%s", err, out, page)
	}
}

func TestPageDate(t *testing.T) {
	if got := pageDate("1795000000", time.Time{}); got != "2026-11-18" {
		t.Errorf("pageDate(SOURCE_DATE_EPOCH) = %q", got)
	}
}

// TestParseHelpKeepsTables checks a description with a line ending in a
// colon (not a section title) and an indented table, as userdown-hook's
// help has.
func TestParseHelpKeepsTables(t *testing.T) {
	text := `Usage: userdown-hook [flags]

Ganeti instance hook.

Everything comes from its environment (of the rest only one variable
is read):

    instance-start      pre:  destroy
                        post: rewrite
    instance-add        pre:  free memory

Exit status: 0 always in the pre phase.

Flags:
  -h, --help    Show context-sensitive help.
`
	h, err := ParseHelp(text)
	if err != nil {
		t.Fatal(err)
	}
	want := []Para{
		{Text: "Ganeti instance hook."},
		{Text: "Everything comes from its environment (of the rest only one variable is read):"},
		{Text: "instance-start      pre:  destroy\n                    post: rewrite\ninstance-add        pre:  free memory", Pre: true},
		{Text: "Exit status: 0 always in the pre phase."},
	}
	if d := cmp.Diff(want, h.Description); d != "" {
		t.Errorf("description (-want +got):\n%s", d)
	}
	if len(h.Sections) != 1 || h.Sections[0].Title != "Flags" {
		t.Errorf("sections: %+v, want only Flags", h.Sections)
	}
	page := Render("userdown-hook", h, nil, Meta{Date: "2026-11-25"})
	if !strings.Contains(page, ".nf\ninstance\\-start      pre:  destroy\n") {
		t.Errorf("the table is not kept line by line:\n%s", page)
	}
}
