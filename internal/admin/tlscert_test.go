package admin_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/walhook/walhook/internal/admin"
	"github.com/walhook/walhook/internal/testkit"
)

// writeCert writes a self-signed certificate for 127.0.0.1 with serial
// into dir/cert.pem and dir/key.pem, as a renewal would (new files moved
// into place).
func writeCert(t *testing.T, dir string, serial int64) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "walhook admin"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for file, block := range map[string]*pem.Block{certFile: {Type: "CERTIFICATE", Bytes: der}, keyFile: {Type: "EC PRIVATE KEY", Bytes: keyDER}} {
		tmp := file + ".new"
		if err := os.WriteFile(tmp, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}

// TestCertReloader: the admin listener serves the certificate of
// tls_cert/tls_key and, once the files are replaced, the new one without a
// restart; a broken replacement keeps the old one serving.
func TestCertReloader(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := writeCert(t, dir, 1)
	certs, err := admin.NewCertReloader(certFile, keyFile, zerolog.New(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	// As relay.serveAdmin does: a TLS listener with the reloader.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(tls.NewListener(l, &tls.Config{GetCertificate: certs.GetCertificate}))
	}()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	url := "https://" + l.Addr().String()
	served := func() int64 {
		tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}
		defer tr.CloseIdleConnections()
		res, err := (&http.Client{Transport: tr}).Get(url)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.TLS.PeerCertificates[0].SerialNumber.Int64()
	}
	if n := served(); n != 1 {
		t.Fatalf("serving serial %d, want 1", n)
	}
	writeCert(t, dir, 2)
	testkit.Eventually(t, "the renewed certificate to be served", func() bool { return served() == 2 })

	// A key that is not the certificate's: the old pair keeps serving.
	if err := os.WriteFile(keyFile, []byte("-----BEGIN EC PRIVATE KEY-----\nbroken\n-----END EC PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2500 * time.Millisecond) // past the 1s re-check, twice
	for time.Now().Before(deadline) {
		if n := served(); n != 2 {
			t.Fatalf("after a broken key the listener serves serial %d, want 2", n)
		}
		time.Sleep(100 * time.Millisecond) // a handshake every 100ms, to meet the re-check
	}
	if _, err := admin.NewCertReloader(certFile, keyFile, zerolog.New(io.Discard)); err == nil {
		t.Fatal("a broken pair loads at start")
	}
}
