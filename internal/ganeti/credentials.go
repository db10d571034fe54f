package ganeti

import (
	"fmt"
	"strings"

	"ganeti-userdown/internal/trust"
)

// maxCredentials bounds the credentials file: one short line.
const maxCredentials = 64 << 10

// ReadCredentials reads a RAPI credentials file: "user password" on one
// line. The file is refused, naming it and its mode, when group or others
// have any access to it (it must be 0600 or stricter), when it is not a
// regular file (a FIFO is refused at once, never waited on), and, running
// as root, when it or a directory on the way is not root's (see
// trust.ReadFile; links are resolved first). The password never
// appears in an error.
func ReadCredentials(path string) (user, password string, err error) {
	f, err := trust.ReadFile(path, maxCredentials)
	if err != nil {
		return "", "", fmt.Errorf("rapi credentials: %w", err)
	}
	if perm := f.Info.Mode().Perm(); perm&0o077 != 0 {
		return "", "", fmt.Errorf("rapi credentials %s: mode %04o lets group or others read it; run chmod 600 %s", f.Path, perm, f.Path)
	}
	b := f.Data
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 {
		return "", "", fmt.Errorf("rapi credentials %s: want one line \"user password\", found %d non-empty lines", path, len(lines))
	}
	fields := strings.Fields(lines[0])
	if len(fields) != 2 {
		return "", "", fmt.Errorf("rapi credentials %s: want \"user password\" on one line, found %d words", path, len(fields))
	}
	return fields[0], fields[1], nil
}
