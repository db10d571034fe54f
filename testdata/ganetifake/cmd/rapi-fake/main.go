// Command rapi-fake serves the Ganeti RAPI fake over HTTPS for `make demo`
// and manual tests, on the cluster state file shared with the gnt-instance
// and gnt-debug fakes.
//
//	rapi-fake --state STATE.json --listen 127.0.0.1:5080 --dir DIR
//
// It writes DIR/rapi.pem (a self-signed certificate for
// ganeti.example.com with no subjectAltName, key included, as Ganeti's)
// and DIR/rapi-users ("user password" lines: a writer and a reader), and
// prints the URL once it listens.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"ganeti-userdown/testdata/ganetifake"
)

func main() {
	state := flag.String("state", "", "cluster state file (JSON, shared with the gnt-* fakes)")
	listen := flag.String("listen", "127.0.0.1:5080", "address to listen on (keep it on loopback)")
	dir := flag.String("dir", ".", "directory for rapi.pem, writer.secret and reader.secret")
	logFile := flag.String("log", "", "append each request as a JSON line to this file")
	flag.Parse()
	if *state == "" {
		fmt.Fprintln(os.Stderr, "rapi-fake: --state is required")
		os.Exit(2)
	}
	if err := run(*state, *listen, *dir, *logFile); err != nil {
		slog.Error("rapi-fake", "err", err)
		os.Exit(1)
	}
}

func run(state, listen, dir, logFile string) error {
	cert, err := ganetifake.NewCert("ganeti.example.com", false, nil)
	if err != nil {
		return err
	}
	files := map[string]string{
		"rapi.pem":      string(cert.PEM),
		"writer.secret": ganetifake.WriterUser + " " + ganetifake.WriterPassword + "\n",
		"reader.secret": ganetifake.ReaderUser + " " + ganetifake.ReaderPassword + "\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			return err
		}
	}
	eng := ganetifake.NewEngine(ganetifake.NewFileStore(state), true)
	defer eng.Close()
	h := &ganetifake.Handler{Engine: eng, LogFile: logFile, Users: map[string]ganetifake.User{
		ganetifake.WriterUser: {Password: ganetifake.WriterPassword, Write: true},
		ganetifake.ReaderUser: {Password: ganetifake.ReaderPassword},
	}}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert.TLS}}}
	fmt.Printf("https://%s\n", ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case <-ctx.Done():
		return srv.Close()
	case err := <-errc:
		return err
	}
}
