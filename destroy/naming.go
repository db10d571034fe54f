package destroy

import (
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// dumpStamp is the timestamp format of dump file names: fixed width, so
// names of one instance sort by age.
const dumpStamp = "20060102T150405.000Z"

// dumpSuffix ends every core dump file name.
const dumpSuffix = ".core"

// DumpPath returns where the core dump of instance taken at now goes:
// <dir>/<instance>.<UTC timestamp>.core.
func DumpPath(dir, instance string, now time.Time) string {
	return filepath.Join(dir, instance+"."+now.UTC().Format(dumpStamp)+dumpSuffix)
}

// DumpsToPrune returns, from the file names found in the dump directory,
// those of instance's dumps beyond the newest keep, oldest first. Names
// of other instances (even ones whose name starts with instance's) and
// files that are not dumps are never returned.
func DumpsToPrune(names []string, instance string, keep int) []string {
	var mine []string
	for _, n := range names {
		if dumpOf(n) == instance {
			mine = append(mine, n)
		}
	}
	sort.Strings(mine)
	if keep < 0 {
		keep = 0
	}
	if len(mine) <= keep {
		return nil
	}
	return mine[:len(mine)-keep]
}

// dumpOf returns the instance a dump file name belongs to, or "".
func dumpOf(name string) string {
	rest, ok := strings.CutSuffix(name, dumpSuffix)
	if !ok || len(rest) < len(dumpStamp)+2 {
		return ""
	}
	stamp := rest[len(rest)-len(dumpStamp):]
	if _, err := time.Parse(dumpStamp, stamp); err != nil {
		return ""
	}
	inst := rest[:len(rest)-len(dumpStamp)]
	inst, ok = strings.CutSuffix(inst, ".")
	if !ok || inst == "" {
		return ""
	}
	return inst
}
