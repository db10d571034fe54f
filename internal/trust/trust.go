// Package trust decides whether root may act on what a file says: as
// OpenSSH does for its configuration and keys, a file root reads or runs
// must be owned by root and not writable by group or others, and so must
// every directory on the way to it, links resolved; otherwise anyone who
// can write one of them could make root run what they like.
package trust

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Error is a file or directory root must not trust.
type Error struct {
	// Path is the file named; Culprit the file or directory on the way to
	// it that is not safe (Path itself, a directory, or a link's target).
	Path, Culprit string
	UID           int
	Mode          fs.FileMode
}

// Error names the file, the culprit, its owner and its mode, and what to do.
func (e *Error) Error() string {
	what := e.Culprit
	if e.Culprit != e.Path {
		what = e.Culprit + " (on the way to " + e.Path + ")"
	}
	return what + " is owned by uid " + strconv.Itoa(e.UID) + " with mode " + octal(e.Mode) +
		": running as root, ganeti-userdown trusts only files and directories owned by root and not writable by group or others (chown root " +
		e.Culprit + "; chmod go-w " + e.Culprit + ")"
}

// octal spells a mode as chmod takes it (0755, 1777).
func octal(m fs.FileMode) string {
	n := uint64(m.Perm())
	if m&fs.ModeSticky != 0 {
		n |= 0o1000
	}
	if m&fs.ModeSetgid != 0 {
		n |= 0o2000
	}
	if m&fs.ModeSetuid != 0 {
		n |= 0o4000
	}
	s := strconv.FormatUint(n, 8)
	for len(s) < 4 {
		s = "0" + s
	}
	return s
}

// trustedOwner reports whether the running process may trust what uid
// owns: root's, or its own user's (for root, the same).
func trustedOwner(uid uint32) bool { return uid == 0 || int(uid) == os.Geteuid() }

// maxLinks bounds the links followed, as the kernel's ELOOP does.
const maxLinks = 40

// Required reports whether the checks apply: only root must refuse other
// users' files (anyone else can only hurt themselves).
func Required() bool { return os.Geteuid() == 0 }

// Check resolves path's links and, when running as root (see Required),
// checks the file and every directory traversed on the way, those holding
// the links included: each must be owned by root and not writable by
// group or others (a sticky directory owned by root, such as /tmp, may be
// writable by others: they cannot replace what root owns in it). It returns
// the resolved path. A file that does not exist is an error wrapping
// fs.ErrNotExist (after its directories were found safe); a refused one an
// *Error.
func Check(path string) (string, error) {
	real, _, err := Stat(path)
	return real, err
}

// Stat is Check that also returns what lstat said of the resolved file,
// so that callers need not stat it again.
func Stat(path string) (string, fs.FileInfo, error) {
	if !Required() {
		real, err := filepath.EvalSymlinks(path)
		if err != nil {
			return "", nil, err
		}
		fi, err := os.Lstat(real)
		return real, fi, err
	}
	return check(path)
}

// Walk is Stat whoever runs: it resolves path's links and checks path and
// every directory traversed on the way, those holding the links included,
// by the rule of Safe. Running as root it is Stat; another user may own
// them too. It is for what a process keeps for itself (a state directory
// whose records decide what it destroys), where even a user's own process
// must not take what others could have written.
func Walk(path string) (string, fs.FileInfo, error) { return check(path) }

func check(path string) (string, fs.FileInfo, error) {
	if !filepath.IsAbs(path) {
		abs, err := filepath.Abs(path)
		if err != nil {
			return "", nil, err
		}
		path = abs
	}
	fi, err := os.Lstat("/")
	if err != nil {
		return "", nil, err
	}
	if err := Safe(path, "/", fi, true); err != nil {
		return "", nil, err
	}
	resolved := "/"
	rest := strings.Split(path, "/")
	links := 0
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			resolved = filepath.Dir(resolved)
			continue
		}
		next := filepath.Join(resolved, c)
		cfi, err := os.Lstat(next)
		if err != nil {
			return "", nil, err
		}
		if cfi.Mode()&fs.ModeSymlink != 0 {
			if links++; links > maxLinks {
				return "", nil, &fs.PathError{Op: "resolve", Path: path, Err: syscall.ELOOP}
			}
			target, err := os.Readlink(next)
			if err != nil {
				return "", nil, err
			}
			if filepath.IsAbs(target) {
				resolved = "/"
			}
			rest = append(strings.Split(target, "/"), rest...)
			continue
		}
		if err := Safe(path, next, cfi, len(rest) > 0 || cfi.IsDir()); err != nil {
			return "", nil, err
		}
		resolved, fi = next, cfi
	}
	return resolved, fi, nil
}

// Safe checks p, a file or directory met on the way to path (fi is what
// lstat or fstat said of it): it must be owned by root or the running user
// (for root, by root) and not writable by group or others. With sticky, a
// sticky directory of such an owner (/tmp) may be writable by others: they
// cannot replace what is not theirs in it. A refusal is an *Error.
func Safe(path, p string, fi fs.FileInfo, sticky bool) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return errors.New(p + ": no owner information")
	}
	mode := fi.Mode()
	writable := mode.Perm()&0o022 != 0
	if sticky && mode.IsDir() && mode&fs.ModeSticky != 0 && trustedOwner(st.Uid) {
		writable = false // /tmp: others cannot replace root's entries
	}
	if !trustedOwner(st.Uid) || writable {
		return &Error{Path: path, Culprit: p, UID: int(st.Uid), Mode: mode}
	}
	return nil
}

// BadOwner reports whether e refuses its culprit's owner (neither root
// nor the running user), not only its mode.
func (e *Error) BadOwner() bool { return !trustedOwner(uint32(e.UID)) }

// IsRefused reports whether err is a refusal by Check (as opposed to a
// file that does not exist or cannot be read).
func IsRefused(err error) bool {
	var e *Error
	return errors.As(err, &e)
}
