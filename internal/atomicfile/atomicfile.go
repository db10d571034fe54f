// Package atomicfile replaces files so that a reader, or a crash at any
// point, sees either the old content or the new, never a mix or an empty
// file; an existing file keeps its mode and owner. A symbolic link where
// the file is to be written is refused, never followed.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// WriteFile writes data to path through a temporary file in the same
// directory, fsyncs it, renames it over path and fsyncs the directory.
// When path exists, its permission bits and owner are kept; otherwise the
// file is created with perm. The directory's own path may go through
// symbolic links; path's last element must not be one (resolve it first
// to rewrite a link's target).
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	defer dir.Close()
	return replace(dir, filepath.Base(path), path, data, perm)
}

// WriteFileAt is WriteFile for the file name inside the open directory
// dir: name is one path element, reached from dir's descriptor, and
// neither it nor the temporary file is ever reached through a symbolic
// link.
func WriteFileAt(dir *os.File, name string, data []byte, perm fs.FileMode) error {
	return replace(dir, name, filepath.Join(dir.Name(), name), data, perm)
}

// tmpSeq makes temporary names unique within the process; the pid and
// the clock make them unique between processes.
var tmpSeq atomic.Uint64

func replace(dir *os.File, name, shown string, data []byte, perm fs.FileMode) error {
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') {
		return fmt.Errorf("replace %s: %q is not one path element", shown, name)
	}
	dfd := int(dir.Fd())
	mode := uint32(perm.Perm())
	uid, gid := -1, -1
	var st syscall.Stat_t
	switch err := statNoFollow(dfd, name, &st); {
	case err == nil:
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFREG:
		case syscall.S_IFLNK:
			return fmt.Errorf("replace %s: a symbolic link: refused", shown)
		default:
			return fmt.Errorf("replace %s: not a regular file", shown)
		}
		mode = st.Mode & 0o777
		uid, gid = int(st.Uid), int(st.Gid)
	case errors.Is(err, fs.ErrNotExist):
	default:
		return fmt.Errorf("replace %s: %w", shown, err)
	}

	var tmpName string
	var fd int
	for {
		tmpName = "." + name + ".tmp-" + strconv.Itoa(os.Getpid()) + "-" +
			strconv.FormatInt(time.Now().UnixNano(), 36) + "-" + strconv.FormatUint(tmpSeq.Add(1), 36)
		var err error
		fd, err = syscall.Openat(dfd, tmpName,
			syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EEXIST) {
			return fmt.Errorf("replace %s: create temporary file: %w", shown, err)
		}
	}
	tmp := os.NewFile(uintptr(fd), filepath.Join(dir.Name(), tmpName))
	done := false
	defer func() {
		if !done {
			tmp.Close()
			syscall.Unlinkat(dfd, tmpName)
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("replace %s: write %s: %w", shown, tmp.Name(), err)
	}
	if err := tmp.Chmod(fs.FileMode(mode)); err != nil {
		return fmt.Errorf("replace %s: chmod: %w", shown, err)
	}
	if uid >= 0 && (uid != os.Geteuid() || gid != os.Getegid()) {
		if err := tmp.Chown(uid, gid); err != nil {
			return fmt.Errorf("replace %s: keep owner %d:%d: %w", shown, uid, gid, err)
		}
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("replace %s: fsync: %w", shown, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("replace %s: close: %w", shown, err)
	}
	// renameat replaces name itself, whatever it is now: it never
	// follows a link.
	if err := syscall.Renameat(dfd, tmpName, dfd, name); err != nil {
		return fmt.Errorf("replace %s: %w", shown, err)
	}
	done = true
	// The rename is durable once the directory is.
	dir.Sync()
	return nil
}

// oPath is Linux's O_PATH (the same value on every architecture Go
// runs Linux on), which package syscall does not name.
const oPath = 0x200000

// statNoFollow is fstatat(AT_SYMLINK_NOFOLLOW), made of an O_PATH open
// and fstat because package syscall has no Fstatat on every architecture.
func statNoFollow(dfd int, name string, st *syscall.Stat_t) error {
	fd, err := syscall.Openat(dfd, name, oPath|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	return syscall.Fstat(fd, st)
}
