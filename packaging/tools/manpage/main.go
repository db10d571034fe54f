// Command manpage writes a section-8 manual page for each ganeti-userdown
// binary from the binary's own --help (and each subcommand's), so the
// pages say what the programs say.
//
//	manpage -out DIR [-version V] [-date YYYY-MM-DD] BINARY...
//
// Each BINARY is run with --help (with a private $USERDOWN_CONFIG so that
// no node configuration is read); the page is DIR/<name>.8.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	out := flag.String("out", ".", "directory for the pages")
	version := flag.String("version", "", "version named in the page footer")
	date := flag.String("date", "", "date in the page footer (default: $SOURCE_DATE_EPOCH or today)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: manpage -out DIR [-version V] [-date YYYY-MM-DD] BINARY...\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if *date == "" {
		*date = pageDate(os.Getenv("SOURCE_DATE_EPOCH"), time.Now())
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "manpage:", err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, bin := range flag.Args() {
		page, err := Generate(ctx, bin, Meta{Version: *version, Date: *date})
		if err != nil {
			fmt.Fprintln(os.Stderr, "manpage:", err)
			os.Exit(1)
		}
		path := filepath.Join(*out, filepath.Base(bin)+".8")
		if err := os.WriteFile(path, []byte(page), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "manpage:", err)
			os.Exit(1)
		}
	}
}

func pageDate(epoch string, now time.Time) string {
	var sec int64
	if _, err := fmt.Sscan(epoch, &sec); err == nil && epoch != "" {
		return time.Unix(sec, 0).UTC().Format("2006-01-02")
	}
	return now.UTC().Format("2006-01-02")
}

// Generate runs bin --help and the help of every command it lists and
// renders the manual page.
func Generate(ctx context.Context, bin string, m Meta) (string, error) {
	name := filepath.Base(bin)
	top, err := runHelp(ctx, bin)
	if err != nil {
		return "", err
	}
	h, err := ParseHelp(top)
	if err != nil {
		return "", fmt.Errorf("%s --help: %w", name, err)
	}
	var cmds []Help
	for _, c := range h.Commands {
		words := c.Words()
		if len(words) == 0 {
			continue
		}
		text, err := runHelp(ctx, bin, append(words, "--help")...)
		if err != nil {
			return "", err
		}
		ch, err := ParseHelp(text)
		if err != nil {
			return "", fmt.Errorf("%s %s --help: %w", name, strings.Join(words, " "), err)
		}
		cmds = append(cmds, ch)
	}
	return Render(name, h, cmds, m), nil
}

func runHelp(ctx context.Context, bin string, args ...string) (string, error) {
	if len(args) == 0 {
		args = []string{"--help"}
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	// Never read a node's configuration while building.
	cmd.Env = append(os.Environ(), "USERDOWN_CONFIG=/nonexistent/userdown.toml", "COLUMNS=80")
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = strings.TrimSpace(string(ee.Stderr))
		}
		return "", fmt.Errorf("%s %s: %w %s", bin, strings.Join(args, " "), err, stderr)
	}
	return string(out), nil
}
