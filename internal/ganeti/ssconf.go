package ganeti

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"ganeti-userdown/internal/trust"
)

// maxSsconf bounds one ssconf file read: the keys read here hold one
// short line (Ganeti's largest, ssconf_node_list, is a line per node).
const maxSsconf = 1 << 20

// ReadSsconf returns the value of one of Ganeti's ssconf files, which every
// node keeps under Ganeti's data dir: key "master_node" reads
// dir/ssconf_master_node. Trailing white space is removed, as Ganeti does.
// The file must be a regular file of at most 1 MiB (see trust.ReadRegular:
// a FIFO is refused at once, never waited on).
func ReadSsconf(dir, key string) (string, error) {
	if key == "" || strings.ContainsAny(key, "/\x00") {
		return "", fmt.Errorf("ssconf: bad key %q", key)
	}
	f, err := trust.ReadRegular(filepath.Join(dir, "ssconf_"+key), maxSsconf)
	if err != nil {
		return "", fmt.Errorf("ssconf: %w", err)
	}
	return strings.TrimRight(string(f.Data), " \t\r\n"), nil
}

// UserShutdownEnabled reports whether the cluster's own user-shutdown
// handling is on (gnt-cluster modify --user-shutdown=true), from the
// ssconf file ssconf_enabled_user_shutdown. A missing file means a Ganeti
// without the feature: false. Any value other than True or False is an
// error.
func UserShutdownEnabled(dir string) (bool, error) {
	v, err := ReadSsconf(dir, "enabled_user_shutdown")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	switch v {
	case "True":
		return true, nil
	case "False":
		return false, nil
	}
	return false, fmt.Errorf("ssconf: %s: want True or False, got %q", filepath.Join(dir, "ssconf_enabled_user_shutdown"), v)
}

// MasterNode returns the master's name from ssconf_master_node.
func MasterNode(dir string) (string, error) {
	m, err := ReadSsconf(dir, "master_node")
	if err != nil {
		return "", err
	}
	if m == "" || strings.ContainsAny(m, " \t\n/") {
		return "", fmt.Errorf("ssconf: %s: not a node name: %q", filepath.Join(dir, "ssconf_master_node"), m)
	}
	return m, nil
}
