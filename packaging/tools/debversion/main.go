// Command debversion prints the Debian package version of the working tree:
// `git describe` turned into a version dpkg accepts and that sorts the way
// the commits were made.
//
//	v1.2.3                   -> 1.2.3
//	v1.2.3-4-gabc1234        -> 1.2.3+git4.abc1234
//	v1.2.3-4-gabc1234-dirty  -> 1.2.3+git4.abc1234.dirty
//	v2.0-rc1                 -> 2.0~rc1
//	abc1234 (no tag, 17 commits) -> 0~git17.abc1234
//
// With an argument it converts that describe string instead of asking git
// (the commit count then comes from -count).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

func main() {
	count := flag.Int("count", -1, "commit count for untagged describe strings (default: git rev-list --count HEAD)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: debversion [-count N] [DESCRIBE]\n\nPrints the Debian version for DESCRIBE (default: git describe --tags --always --dirty).\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	describe := flag.Arg(0)
	if describe == "" {
		out, err := git(ctx, "describe", "--tags", "--always", "--dirty")
		if err != nil {
			fmt.Fprintln(os.Stderr, "debversion:", err)
			os.Exit(2)
		}
		describe = out
	}
	if *count < 0 {
		out, err := git(ctx, "rev-list", "--count", "HEAD")
		if err != nil {
			fmt.Fprintln(os.Stderr, "debversion:", err)
			os.Exit(2)
		}
		n, err := strconv.Atoi(out)
		if err != nil {
			fmt.Fprintf(os.Stderr, "debversion: git rev-list --count: not a number: %q\n", out)
			os.Exit(2)
		}
		*count = n
	}
	v, err := FromDescribe(describe, *count)
	if err != nil {
		fmt.Fprintln(os.Stderr, "debversion:", err)
		os.Exit(2)
	}
	fmt.Println(v)
}

func git(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "git", args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(ee.Stderr)))
		}
		return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}

var (
	// "-N-gHASH" that git describe appends after a tag.
	describeSuffix = regexp.MustCompile(`^(.*)-([0-9]+)-g([0-9a-f]+)$`)
	bareHash       = regexp.MustCompile(`^[0-9a-f]{4,40}$`)
	// A native Debian version: starts with a digit, no hyphen (that would
	// need a Debian revision), no colon (no epoch).
	debianVersion = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~]*$`)
)

// FromDescribe converts the output of `git describe --tags --always
// --dirty` into a native Debian version. count is the number of commits
// reachable from HEAD; it orders builds made before the first tag.
func FromDescribe(describe string, count int) (string, error) {
	d := strings.TrimSpace(describe)
	if d == "" {
		return "", fmt.Errorf("empty git describe output")
	}
	dirty := false
	if s, ok := strings.CutSuffix(d, "-dirty"); ok {
		d, dirty = s, true
	}
	var v string
	switch {
	case bareHash.MatchString(d):
		if count < 0 {
			return "", fmt.Errorf("describe %q has no tag: need the commit count", describe)
		}
		v = fmt.Sprintf("0~git%d.%s", count, d)
	default:
		tag, extra := d, ""
		if m := describeSuffix.FindStringSubmatch(d); m != nil {
			tag, extra = m[1], "+git"+m[2]+"."+m[3]
		}
		tag = strings.TrimPrefix(tag, "v")
		// A hyphen inside a tag marks a pre-release (2.0-rc1): it sorts
		// before the release, as ~ does for dpkg.
		tag = strings.NewReplacer("-", "~", "_", ".").Replace(tag)
		v = tag + extra
	}
	if dirty {
		if strings.Contains(v, "+") {
			v += ".dirty"
		} else {
			v += "+dirty"
		}
	}
	if !debianVersion.MatchString(v) {
		return "", fmt.Errorf("describe %q gives %q, not a valid Debian version (tags must start with a digit, optionally after a v)", describe, v)
	}
	return v, nil
}
