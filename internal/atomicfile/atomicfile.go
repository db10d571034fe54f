// Package atomicfile replaces files so that a reader, or a crash at any
// point, sees either the old content or the new, never a mix or an empty
// file; an existing file keeps its mode and owner.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// WriteFile writes data to path through a temporary file in the same
// directory, fsyncs it, renames it over path and fsyncs the directory.
// When path exists, its permission bits and owner are kept; otherwise the
// file is created with perm.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	mode := perm
	uid, gid := -1, -1
	if fi, err := os.Stat(path); err == nil {
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("replace %s: not a regular file", path)
		}
		mode = fi.Mode().Perm()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(st.Uid), int(st.Gid)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("replace %s: %w", path, err)
	}

	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	tmpName := tmp.Name()
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("replace %s: write %s: %w", path, tmpName, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("replace %s: chmod: %w", path, err)
	}
	if uid >= 0 && (uid != os.Geteuid() || gid != os.Getegid()) {
		if err := tmp.Chown(uid, gid); err != nil {
			return fmt.Errorf("replace %s: keep owner %d:%d: %w", path, uid, gid, err)
		}
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("replace %s: fsync: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("replace %s: close: %w", path, err)
	}
	if err := os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	done = true
	if d, err := os.Open(dir); err == nil {
		// The rename is durable once the directory is.
		d.Sync()
		d.Close()
	}
	return nil
}
