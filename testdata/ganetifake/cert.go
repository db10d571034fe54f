package ganetifake

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"time"
)

// Cert is a server certificate made like Ganeti's rapi.pem: self-signed,
// issued to ganeti.example.com, with no subjectAltName.
type Cert struct {
	TLS tls.Certificate
	// CertPEM is the certificate alone; PEM is key and certificate in one
	// file, as Ganeti writes rapi.pem.
	CertPEM []byte
	PEM     []byte
	X509    *x509.Certificate
}

// NewCert generates a certificate for commonName. With parent nil it is
// self-signed; otherwise parent (which must be a CA) signs it.
func NewCert(commonName string, isCA bool, parent *Cert) (*Cert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: commonName},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	if isCA {
		tmpl.IsCA = true
		tmpl.BasicConstraintsValid = true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	}
	signer, signerKey := tmpl, any(key)
	if parent != nil {
		signer, signerKey = parent.X509, parent.TLS.PrivateKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	chain := [][]byte{der}
	if parent != nil {
		chain = append(chain, parent.X509.Raw)
	}
	return &Cert{
		TLS:     tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: c},
		CertPEM: certPEM,
		PEM:     append(keyPEM, certPEM...),
		X509:    c,
	}, nil
}

// appendLine appends b and a newline to path (a request log).
func appendLine(path string, b []byte) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	f.Write(append(b, '\n'))
}
