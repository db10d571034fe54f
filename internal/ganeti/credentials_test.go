package ganeti

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ganeti-userdown/internal/trust/trusttest"
)

// TestReadCredentialsRefuses checks the files a root process must not
// read the RAPI password from, and that a FIFO is refused at once instead
// of blocking the run (and its lock) for ever.
// Reference: issue 14, points 2 and 5.
func TestReadCredentialsRefuses(t *testing.T) {
	trusttest.RequireRoot(t)
	dir := t.TempDir()
	write := func(name string, mode os.FileMode, uid int) string {
		return trusttest.File(t, filepath.Join(dir, name), "userdown secret\n", mode, uid)
	}
	good := write("good", 0o600, 0)
	other := write("other", 0o600, trusttest.Nobody)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(other, link); err != nil {
		t.Fatal(err)
	}
	fifo := trusttest.Fifo(t, filepath.Join(dir, "fifo"))
	if u, p, err := ReadCredentials(good); err != nil || u != "userdown" || p != "secret" {
		t.Errorf("good file: %q %q %v", u, p, err)
	}
	for _, tc := range []struct{ name, path, want string }{
		{"another user's file", other, "uid 65534"},
		{"a link to another user's 0600 file", link, "uid 65534"},
		{"a FIFO", fifo, "not a regular file"},
	} {
		err := trusttest.Prompt(t, tc.name, func() error {
			_, _, err := ReadCredentials(tc.path)
			return err
		})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), dir) {
			t.Errorf("%s: err = %v, want one naming the file and saying %q", tc.name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: the error shows the password: %v", tc.name, err)
		}
	}
}
