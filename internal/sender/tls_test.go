package sender

import (
	"context"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walhook/walhook/internal/netguard"
)

// tlsServer starts an HTTPS httptest server (HTTP/2 offered when h2)
// answering 204, recording each request's protocol and counting
// connections, and writes its self-signed certificate to a PEM file.
func tlsServer(t *testing.T, h2 bool) (srv *httptest.Server, caFile string, protos chan string, conns *atomic.Int64) {
	t.Helper()
	protos = make(chan string, 100)
	conns = new(atomic.Int64)
	srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		protos <- r.Proto
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.EnableHTTP2 = h2
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake refused on purpose
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, block, 0o600); err != nil {
		t.Fatal(err)
	}
	return srv, caFile, protos, conns
}

// TestSendHTTPSWithCAFile checks that a self-signed endpoint is refused
// with the system's roots and accepted once its CA file is loaded.
func TestSendHTTPSWithCAFile(t *testing.T) {
	t.Parallel()
	srv, caFile, protos, _ := tlsServer(t, false)
	res := newClient(t, Options{}).Send(context.Background(), Request{URL: srv.URL, Body: []byte(`{}`), Timeout: 5 * time.Second})
	if res.OK() || !strings.HasPrefix(res.ErrorText(), "tls: ") {
		t.Fatalf("self-signed endpoint without its CA: %+v %q, want a tls error", res, res.ErrorText())
	}
	pool, err := LoadRootCAs(caFile)
	if err != nil {
		t.Fatal(err)
	}
	res = newClient(t, Options{RootCAs: pool}).Send(context.Background(), Request{URL: srv.URL, Body: []byte(`{}`), Timeout: 5 * time.Second})
	if !res.OK() {
		t.Fatalf("with its CA loaded: %+v %q", res, res.ErrorText())
	}
	if p := <-protos; p != "HTTP/1.1" {
		t.Errorf("protocol %s, want HTTP/1.1 (the server offers no HTTP/2)", p)
	}
}

// TestSendHTTP2ThroughGuard checks that HTTPS endpoints offering HTTP/2
// get it, through the SSRF-guarded dialer as through the plain one, with
// concurrent requests multiplexed on one connection.
func TestSendHTTP2ThroughGuard(t *testing.T) {
	t.Parallel()
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	for name, guard := range map[string]*netguard.Guard{"guarded": {Allow: loopback}, "trusted": nil} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv, caFile, protos, conns := tlsServer(t, true)
			pool, err := LoadRootCAs(caFile)
			if err != nil {
				t.Fatal(err)
			}
			c := newClient(t, Options{Guard: guard, RootCAs: pool})
			// A first request opens the connection, so the rest find it.
			if res := c.Send(context.Background(), Request{URL: srv.URL, Body: []byte(`{}`), Timeout: 5 * time.Second}); !res.OK() {
				t.Fatalf("Send: %+v %q", res, res.ErrorText())
			}
			const n = 20
			var wg sync.WaitGroup
			for range n {
				wg.Go(func() {
					if res := c.Send(context.Background(), Request{URL: srv.URL, Body: []byte(`{}`), Timeout: 5 * time.Second}); !res.OK() {
						t.Errorf("Send: %+v %q", res, res.ErrorText())
					}
				})
			}
			wg.Wait()
			close(protos)
			for p := range protos {
				if p != "HTTP/2.0" {
					t.Errorf("request over %s, want HTTP/2.0", p)
				}
			}
			if got := conns.Load(); got != 1 {
				t.Errorf("%d connections for %d requests, want 1 multiplexed", got, n+1)
			}
		})
	}
}

func TestLoadRootCAsRefusesFileWithoutCertificate(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "empty.pem")
	if err := os.WriteFile(path, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadRootCAs(path); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("LoadRootCAs of a file without a certificate = %v", err)
	}
	if _, err := LoadRootCAs(filepath.Join(t.TempDir(), "missing.pem")); err == nil {
		t.Error("LoadRootCAs of a missing file succeeded")
	}
}
