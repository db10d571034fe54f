package ganeti

import (
	"path/filepath"
	"strings"
	"testing"

	"ganeti-userdown/internal/trust/trusttest"
	"ganeti-userdown/testdata/ganetifake"
)

// TestFilesReadBounded: the pinned RAPI certificate and the ssconf files
// are read as regular files of bounded size, a FIFO refused at once (a run
// must not hang on it, holding its lock), a huge file refused by its size,
// and a CA file group or others may write refused (whoever can replace
// it picks the server the password goes to); one owned by Ganeti's RAPI
// user, as Debian's rapi.pem is, is read.
// Reference: issue 14, points 2 and 5.
func TestFilesReadBounded(t *testing.T) {
	trusttest.RequireRoot(t)
	dir := t.TempDir()
	cert, err := ganetifake.NewCert("ganeti.example.com", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	good := trusttest.File(t, filepath.Join(dir, "rapi.pem"), string(cert.CertPEM), 0o440, 0)
	if certs, err := LoadPinnedCerts(good); err != nil || len(certs) != 1 {
		t.Fatalf("root's rapi.pem: %d certificates, %v", len(certs), err)
	}
	ganetis := trusttest.File(t, filepath.Join(dir, "ganeti-rapi.pem"), string(cert.CertPEM), 0o440, trusttest.Nobody)
	if certs, err := LoadPinnedCerts(ganetis); err != nil || len(certs) != 1 {
		t.Fatalf("rapi.pem of Ganeti's RAPI user: %d certificates, %v", len(certs), err)
	}
	ssconf := t.TempDir()
	trusttest.File(t, filepath.Join(ssconf, "ssconf_master_node"), "node1.example.com\n", 0o444, 0)
	if m, err := MasterNode(ssconf); err != nil || m != "node1.example.com" {
		t.Fatalf("MasterNode = %q, %v", m, err)
	}
	for _, tc := range []struct {
		name, path, want string
		read             func(string) error
	}{
		{"rapi_ca a FIFO", trusttest.Fifo(t, filepath.Join(dir, "fifo.pem")), "not a regular file", loadCerts},
		{"rapi_ca oversized", trusttest.Sparse(t, filepath.Join(dir, "huge.pem"), 1<<30), "larger than", loadCerts},
		{"rapi_ca group-writable", trusttest.File(t, filepath.Join(dir, "gw.pem"), string(cert.CertPEM), 0o664, 0), "mode 0664 lets group or others write it", loadCerts},
		{"ssconf a FIFO", trusttest.Fifo(t, filepath.Join(ssconf, "ssconf_enabled_user_shutdown")), "not a regular file", userShutdownOf},
		{"ssconf oversized", trusttest.Sparse(t, filepath.Join(t.TempDir(), "ssconf_enabled_user_shutdown"), 1<<30), "larger than", userShutdownOf},
	} {
		err := trusttest.Prompt(t, tc.name, func() error { return tc.read(tc.path) })
		if err == nil || !strings.Contains(err.Error(), tc.path) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one naming %s and saying %q", tc.name, err, tc.path, tc.want)
		}
	}
}

func loadCerts(path string) error {
	_, err := LoadPinnedCerts(path)
	return err
}

// userShutdownOf reads the flag of the ssconf dir holding path.
func userShutdownOf(path string) error {
	_, err := UserShutdownEnabled(filepath.Dir(path))
	return err
}
