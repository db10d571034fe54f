package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ganeti-userdown/internal/trust/trusttest"
)

// TestLoadRefusesUntrusted checks that root loads no configuration anyone
// else could have written, nor one whose [xen] command anyone else could
// replace, and that a FIFO in the config's place is refused at once.
// Reference: issue 14, points 2 and 4.
func TestLoadRefusesUntrusted(t *testing.T) {
	trusttest.RequireRoot(t)
	base := t.TempDir()
	open := trusttest.Dir(t, filepath.Join(base, "open"), 0o777, 0)
	evil := trusttest.File(t, filepath.Join(open, "evil.sh"), "#!/bin/sh\n", 0o755, 0)
	write := func(name, content string, mode os.FileMode, uid int) string {
		return trusttest.File(t, filepath.Join(base, name), content, mode, uid)
	}
	good := write("good.toml", "[xen]\ncommand = \"/bin/true\"\n", 0o644, 0)
	userOwned := write("user.toml", "[xen]\ncommand = \"/bin/true\"\n", 0o666, trusttest.Nobody)
	evilCommand := write("evilcmd.toml", fmt.Sprintf("[xen]\ncommand = %q\n", evil), 0o644, 0)
	evilGnt := write("evilgnt.toml", fmt.Sprintf("[cluster]\nbackend = \"cli\"\ngnt_instance = %q\n", evil), 0o644, 0)
	missingCommand := write("missing.toml", "[xen]\ncommand = \"/nonexistent/xl\"\n", 0o644, 0)
	fifo := trusttest.Fifo(t, filepath.Join(base, "fifo.toml"))

	if c, err := Load(good, true); err != nil || c.Xen.Command != "/bin/true" {
		t.Errorf("root's config: %v", err)
	}
	if _, err := Load(missingCommand, true); err != nil {
		t.Errorf("a command that does not exist is the toolstack's failure, not the config's: %v", err)
	}
	for _, tc := range []struct{ name, path, want string }{
		{"a config another user owns", userOwned, userOwned + " is owned by uid 65534 with mode 0666"},
		{"a command others can replace", evilCommand, "[xen] command " + evil},
		{"a cli-backend command others can replace", evilGnt, "[cluster] gnt_instance " + evil},
		{"a FIFO", fifo, "not a regular file"},
	} {
		err := trusttest.Prompt(t, tc.name, func() error {
			_, err := Load(tc.path, true)
			return err
		})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.path) {
			t.Errorf("%s: err = %v, want one naming %s and saying %q", tc.name, err, tc.path, tc.want)
		}
	}
}
