package destroy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"ganeti-userdown/internal/xen"
)

// Dumper writes a domain's core (satisfied by *xen.Client).
type Dumper interface {
	DumpCore(ctx context.Context, domid int, path string) error
}

// DumpCore writes the core of d into dir (created, mode 0700, when
// missing) at DumpPath, then removes that instance's dumps beyond
// the newest keep. It returns the dump's path and the names it pruned;
// the path is set whenever the dump was written, even when pruning failed.
func DumpCore(ctx context.Context, x Dumper, d xen.Domain, dir string, keep int, now time.Time) (path string, pruned []string, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, fmt.Errorf("dump dir: %w", err)
	}
	path = DumpPath(dir, d.Name, now)
	if err := x.DumpCore(ctx, d.ID, path); err != nil {
		return "", nil, err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return path, nil, fmt.Errorf("prune dumps: %w", err)
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		if e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	for _, n := range DumpsToPrune(names, d.Name, keep) {
		if err := os.Remove(filepath.Join(dir, n)); err != nil {
			return path, pruned, fmt.Errorf("prune dumps: %w", err)
		}
		pruned = append(pruned, n)
	}
	return path, pruned, nil
}
