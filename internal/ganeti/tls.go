package ganeti

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"ganeti-userdown/internal/trust"
)

// maxPinnedCerts bounds the [cluster] rapi_ca file: Ganeti's rapi.pem (a
// key and a certificate) is some 3 KiB, a CA bundle some 200 KiB.
const maxPinnedCerts = 1 << 20

// LoadPinnedCerts reads the certificates of a PEM file such as Ganeti's
// rapi.pem (which also holds the server's private key: every block other
// than CERTIFICATE is skipped and never kept). The file must be a regular
// file of at most 1 MiB (see trust.ReadRegular: a FIFO is refused at once,
// never waited on) that group and others cannot write: whoever can
// replace it picks the server the password is sent to. Its owner is not
// checked: Ganeti's own rapi.pem belongs to its RAPI daemon's user
// (gnt-rapi, mode 0440) where Ganeti runs its daemons as separate users,
// as Debian's package does, and its directory to gnt-masterd.
func LoadPinnedCerts(path string) ([]*x509.Certificate, error) {
	f, err := trust.ReadRegular(path, maxPinnedCerts)
	if err != nil {
		return nil, fmt.Errorf("rapi ca: %w", err)
	}
	if perm := f.Info.Mode().Perm(); perm&0o022 != 0 {
		return nil, fmt.Errorf("rapi ca %s: mode %04o lets group or others write it; run chmod go-w %s", f.Path, perm, f.Path)
	}
	b := f.Data
	var certs []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("rapi ca %s: %w", path, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("rapi ca %s: no PEM certificate found", path)
	}
	return certs, nil
}

// PinError says the RAPI server did not present the pinned certificate.
type PinError struct {
	Subject string
	SHA256  [32]byte
	Reason  string
}

// Error says why the server's certificate was refused.
func (e *PinError) Error() string {
	return fmt.Sprintf("rapi server certificate %q (sha256 %x) is neither the pinned [cluster] rapi_ca certificate nor signed by it: %s", e.Subject, e.SHA256, e.Reason)
}

// VerifyPinned checks the chain a server presented against the pinned
// certificates: the leaf must be one of them byte for byte, or chain up to
// one of them (valid at now). Host names are not checked: Ganeti's
// rapi.pem names ganeti.example.com and carries no subjectAltName, so the
// certificate itself, not a name, identifies the cluster.
func VerifyPinned(pinned, peer []*x509.Certificate, now time.Time) error {
	if len(peer) == 0 {
		return &PinError{Reason: "the server presented no certificate"}
	}
	leaf := peer[0]
	for _, p := range pinned {
		if leaf.Equal(p) {
			return nil
		}
	}
	roots := x509.NewCertPool()
	for _, p := range pinned {
		roots.AddCert(p)
	}
	inter := x509.NewCertPool()
	for _, c := range peer[1:] {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err == nil {
		return nil
	}
	return &PinError{Subject: leaf.Subject.String(), SHA256: sha256.Sum256(leaf.Raw), Reason: err.Error()}
}

// pinnedTLSConfig verifies the server with VerifyPinned in place of Go's
// host-name verification. VerifyConnection runs on every handshake,
// resumed ones included.
func pinnedTLSConfig(pinned []*x509.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by VerifyConnection below
		VerifyConnection: func(cs tls.ConnectionState) error {
			return VerifyPinned(pinned, cs.PeerCertificates, time.Now())
		},
	}
}

func isPinError(err error) bool {
	var pe *PinError
	return errors.As(err, &pe)
}
