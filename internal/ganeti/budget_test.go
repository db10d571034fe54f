package ganeti

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"ganeti-userdown/testdata/ganetifake"
)

// tricklingServer is an HTTPS server that accepts every request and then
// sends its headers one byte every 50ms, for ever: a master that is up
// but hardly answers. It counts the requests it got.
func tricklingServer(t *testing.T) (url, caFile, credentials string, requests *atomic.Int32) {
	t.Helper()
	cert, err := ganetifake.NewCert("ganeti.example.com", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	requests = new(atomic.Int32)
	done := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		head := "HTTP/1.1 200 OK\r\nServer: Ganeti 3.0.2\r\nX-Slow: " + string(make([]byte, 4096))
		for i := 0; i < len(head); i++ {
			if _, err := buf.WriteString(head[i : i+1]); err != nil || buf.Flush() != nil {
				return
			}
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert.TLS}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(func() { close(done); srv.Close() })
	dir := t.TempDir()
	caFile, credentials = filepath.Join(dir, "rapi.pem"), filepath.Join(dir, "secret")
	os.WriteFile(caFile, cert.PEM, 0o600)
	os.WriteFile(credentials, []byte("rapiwriter secret\n"), 0o600)
	return srv.URL, caFile, credentials, requests
}

// TestRunBudgetBoundsRetries: with a master that trickles its headers,
// each attempt ends at [cluster] timeout, and all attempts of a run
// together end at [cluster] run_timeout: without the shared budget, the
// four attempts of a read (3 retries) took four timeouts and more, and a
// run with three calls twelve. Once the budget is used up, later calls
// fail at once.
//
// Reference: doc/design.md, "Configuration", [cluster] timeout and
// run_timeout.
func TestRunBudgetBoundsRetries(t *testing.T) {
	url, ca, cred, requests := tricklingServer(t)
	c, err := NewRAPI(RAPIOptions{URL: url, CAFile: ca, CredentialsFile: cred,
		Timeout: 400 * time.Millisecond, RunTimeout: 1000 * time.Millisecond, Backoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	start := time.Now()
	_, err = c.Instances(ctx, "node1.example.com")
	el := time.Since(start)
	if !errors.Is(err, ErrRunBudget) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v; want the run's budget used up", err)
	}
	if el < 900*time.Millisecond || el > 1400*time.Millisecond {
		t.Errorf("Instances took %s; want the 1s run budget, not 4 attempts of 400ms", el)
	}
	if n := requests.Load(); n != 3 {
		t.Errorf("%d attempts in 1s of 400ms each, want 3", n)
	}
	start = time.Now()
	if _, err := c.Locked(ctx, []string{"web1.example.com"}); !errors.Is(err, ErrRunBudget) {
		t.Errorf("a call after the budget: %v", err)
	}
	if _, err := c.MarkDown(ctx, MarkDownRequest{Name: "web1.example.com"}); !errors.Is(err, ErrRunBudget) {
		t.Errorf("a mark-down after the budget: %v", err)
	}
	if el := time.Since(start); el > 200*time.Millisecond {
		t.Errorf("calls after the budget took %s, want at once", el)
	}
}

// TestRunBudgetBoundsJobWaits: a job wait ends at the run's budget when
// that comes before [cluster] timeout, through both backends.
func TestRunBudgetBoundsJobWaits(t *testing.T) {
	for name, mk := range map[string]func(*testing.T, ganetifake.State) Client{
		"rapi": func(t *testing.T, st ganetifake.State) Client {
			f := ganetifake.Start(t, st)
			return newRAPI(t, f, func(o *RAPIOptions) { o.Timeout, o.RunTimeout = 5*time.Second, 700*time.Millisecond })
		},
		"cli": func(t *testing.T, st ganetifake.State) Client {
			o := cliBackend(t, st, 5*time.Second).client.(*CLI).o
			o.RunTimeout = 700 * time.Millisecond
			c, err := NewCLI(o)
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
	} {
		t.Run(name, func(t *testing.T) {
			st := fakeState()
			st.Knobs.HangJobs = map[string]bool{"web1.example.com": true}
			c := mk(t, st)
			start := time.Now()
			j, err := c.MarkDown(context.Background(), MarkDownRequest{Name: "web1.example.com"})
			if !errors.Is(err, ErrJobUnfinished) || j.ID == 0 {
				t.Fatalf("got %+v, %v; want the job unfinished", j, err)
			}
			if el := time.Since(start); el > 2*time.Second {
				t.Errorf("MarkDown took %s with a 700ms run budget (timeout 5s)", el)
			}
		})
	}
}
