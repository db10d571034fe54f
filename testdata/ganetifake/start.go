package ganetifake

import (
	"crypto/tls"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// Default users of the fake, as in the captures: rapiwriter has write
// access, reader only read access.
const (
	WriterUser     = "rapiwriter"
	WriterPassword = "writer-secret"
	ReaderUser     = "reader"
	ReaderPassword = "reader-secret"
)

// Server is a running in-process RAPI fake with the files a client needs.
type Server struct {
	*Handler
	Engine *Engine
	// URL is https://127.0.0.1:PORT.
	URL string
	// CAFile is the server's rapi.pem (key and certificate, as Ganeti
	// writes it); WriterCredentials and ReaderCredentials are "user
	// password" files, mode 0600.
	CAFile            string
	WriterCredentials string
	ReaderCredentials string
	Cert              *Cert

	srv *httptest.Server
}

// Start runs a RAPI fake over st for the duration of the test.
func Start(t testing.TB, st State) *Server {
	t.Helper()
	cert, err := NewCert("ganeti.example.com", false, nil)
	if err != nil {
		t.Fatalf("ganetifake: %v", err)
	}
	return StartWithCert(t, st, cert)
}

// StartWithCert is Start with a chosen server certificate.
func StartWithCert(t testing.TB, st State, cert *Cert) *Server {
	t.Helper()
	eng := NewEngine(NewMemoryStore(st), true)
	h := &Handler{Engine: eng, Users: map[string]User{
		WriterUser: {Password: WriterPassword, Write: true},
		ReaderUser: {Password: ReaderPassword},
	}}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert.TLS}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected in tests
	srv.StartTLS()
	dir := t.TempDir()
	s := &Server{
		Handler: h, Engine: eng, URL: srv.URL, Cert: cert, srv: srv,
		CAFile:            filepath.Join(dir, "rapi.pem"),
		WriterCredentials: filepath.Join(dir, "writer.secret"),
		ReaderCredentials: filepath.Join(dir, "reader.secret"),
	}
	for path, content := range map[string]string{
		s.CAFile:            string(cert.PEM),
		s.WriterCredentials: WriterUser + " " + WriterPassword + "\n",
		s.ReaderCredentials: ReaderUser + " " + ReaderPassword + "\n",
	} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatalf("ganetifake: %v", err)
		}
	}
	t.Cleanup(s.Close)
	return s
}

// Close stops the server and its job goroutines.
func (s *Server) Close() {
	s.srv.Close()
	s.Engine.Close()
}

// Update changes the fake's state (instances, knobs, toolstack).
func (s *Server) Update(fn func(*State) error) error { return s.Engine.Store.Update(fn) }

// State returns a copy of the fake's state.
func (s *Server) State() State {
	st, err := s.Engine.Store.Snapshot()
	if err != nil {
		panic(err)
	}
	return st
}
