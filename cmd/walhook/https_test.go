package main

import (
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/testenv"
)

// TestHTTPSEndpointWithCAFile runs the binary against an HTTPS endpoint
// with a self-signed certificate offering HTTP/2: walhook trusts it
// through delivery.ca_file, and its deliveries arrive over HTTP/1.1 (the
// default) or, with delivery.http2 = true, over HTTP/2.
func TestHTTPSEndpointWithCAFile(t *testing.T) {
	if testing.Short() {
		t.Skip("process test")
	}
	t.Parallel()
	for _, http2 := range []bool{false, true} {
		t.Run(fmt.Sprint("http2=", http2), func(t *testing.T) {
			t.Parallel()
			s := newSink(signing.GenerateSecret(), 0)
			var h2, other atomic.Int64
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.ProtoMajor == 2 {
					h2.Add(1)
				} else {
					other.Add(1)
				}
				s.ServeHTTP(w, r)
			}))
			srv.EnableHTTP2 = true
			srv.Config.ErrorLog = log.New(io.Discard, "", 0)
			srv.StartTLS()
			t.Cleanup(srv.Close)
			caFile := filepath.Join(t.TempDir(), "ca.pem")
			if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
				t.Fatal(err)
			}

			db := testenv.NewDB(t)
			slot := testenv.Name(t, "slot")
			cfg := writeConfig(t, db, slot, srv.URL+"/hook", s.secret, "")
			editConfig(t, cfg, `  shutdown_timeout = "10s"`, fmt.Sprintf("  shutdown_timeout = \"10s\"\n  ca_file = %q\n  http2 = %v", caFile, http2))
			d := startDaemon(t, cfg)
			waitSlot(t, db, slot)
			ids := insertBacklog(t, db, 200, 50)
			waitDelivered(t, s, ids)
			d.stop(t)
			s.checkOnce(t)
			want, got, wrong := "HTTP/1.1", other.Load(), h2.Load()
			if http2 {
				want, got, wrong = "HTTP/2", h2.Load(), other.Load()
			}
			if wrong != 0 || got == 0 {
				t.Errorf("%d requests over %s, %d over another protocol; want all over %s", got, want, wrong, want)
			}
		})
	}
}
