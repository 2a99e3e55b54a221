package console_test

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/walhook/walhook/internal/console"
)

// testCertFiles writes httptest's certificate for 127.0.0.1 and its key as
// PEM files.
func testCertFiles(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	cert := srv.TLS.Certificates[0]
	srv.Close()
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	var chain []byte
	for _, der := range cert.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	if err := os.WriteFile(certFile, chain, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestConsoleOverNativeTLS: with admin.tls_cert and tls_key a running
// relay serves the API and the console over HTTPS, and a login from the
// listener's own https origin gets a Secure cookie.
func TestConsoleOverNativeTLS(t *testing.T) {
	t.Parallel()
	certFile, keyFile := testCertFiles(t)
	e := startConsoleEnvWith(t, fmt.Sprintf("  tls_cert = %q\n  tls_key = %q", certFile, keyFile))
	if !strings.HasPrefix(e.base, "https://") {
		t.Fatalf("base %s", e.base)
	}
	var hooks struct{ Data []any }
	if code := e.call(t, adminToken, "GET", "/v1/webhooks", "", &hooks); code != http.StatusOK || len(hooks.Data) == 0 {
		t.Fatalf("GET /v1/webhooks over TLS = %d, %v", code, hooks)
	}
	b := newBrowserish(t, e.base)
	b.c.Transport = e.client.Transport
	req, _ := http.NewRequest("POST", e.base+"/ui/api/login", strings.NewReader(`{"token": "`+adminToken+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", e.base)
	res, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	var secure bool
	for _, c := range res.Cookies() {
		secure = secure || (c.Name == console.CookieName && c.Secure)
	}
	if res.StatusCode != http.StatusOK || !secure {
		t.Fatalf("login over native TLS = %d, Secure cookie %v", res.StatusCode, secure)
	}
	// Plain HTTP to the TLS listener is not served.
	if res, err := http.Get(strings.Replace(e.base, "https://", "http://", 1) + "/healthz"); err == nil {
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			t.Fatal("the TLS listener answered plain HTTP")
		}
	}
}
