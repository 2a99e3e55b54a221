package sender

import (
	"crypto/x509"
	"fmt"
	"os"
)

// LoadRootCAs returns the system's certificate authorities plus those in
// the PEM file path (delivery.ca_file): what HTTPS endpoints signed by a
// private or self-signed CA are verified against. The file must hold at
// least one certificate.
func LoadRootCAs(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the CA file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("reading the CA file %s: no PEM certificate in it", path)
	}
	return pool, nil
}
