package admin

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// certRecheck is how often the certificate files are looked at again.
const certRecheck = time.Second

// CertReloader serves the admin listener's TLS certificate (admin.tls_cert
// and admin.tls_key) and reads the files again when they change, so a
// renewed certificate is used without a restart. A pair that does not load
// (half-written, mismatched) is logged and the previous one kept.
type CertReloader struct {
	certFile, keyFile string
	log               zerolog.Logger
	now               func() time.Time

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string    // the files' sizes and modification times when cert was read
	failed  string    // the stamp of files that did not load (logged once)
	checked time.Time // when the files were last looked at
	reading bool      // a goroutine is reading them now
}

// NewCertReloader reads the pair once; an error says what is wrong with it.
func NewCertReloader(certFile, keyFile string, log zerolog.Logger) (*CertReloader, error) {
	c := &CertReloader{certFile: certFile, keyFile: keyFile, log: log, now: time.Now}
	stamp, err := c.stampFiles()
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("loading the admin TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	c.cert, c.stamp, c.checked = &cert, stamp, c.now()
	return c, nil
}

// stampFiles describes the files' sizes and modification times.
func (c *CertReloader) stampFiles() (string, error) {
	stamp := ""
	for _, f := range []string{c.certFile, c.keyFile} {
		st, err := os.Stat(f)
		if err != nil {
			return "", fmt.Errorf("reading the admin TLS files: %w", err)
		}
		stamp += fmt.Sprintf("%d@%d;", st.Size(), st.ModTime().UnixNano())
	}
	return stamp, nil
}

// GetCertificate implements tls.Config.GetCertificate.
func (c *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	due := !c.reading && c.now().Sub(c.checked) >= certRecheck
	if due {
		c.reading, c.checked = true, c.now()
	}
	cert, stamp, failed := c.cert, c.stamp, c.failed
	c.mu.Unlock()
	if !due {
		return cert, nil
	}
	// The files are read outside the lock; other handshakes meanwhile use
	// the certificate in hand.
	fresh, freshStamp := c.reload(stamp, failed)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reading = false
	switch {
	case fresh != nil:
		c.cert, c.stamp, c.failed = fresh, freshStamp, ""
		cert = fresh
	case freshStamp != "":
		c.failed = freshStamp
	}
	return cert, nil
}

// reload reads the pair again when the files changed since stamp: the new
// certificate and its stamp; nil and "" when they did not change (or are
// the failed ones again); nil and their stamp when they do not load.
func (c *CertReloader) reload(stamp, failed string) (*tls.Certificate, string) {
	now, err := c.stampFiles()
	if err != nil {
		return nil, "" // being replaced, perhaps: looked at again in a second
	}
	if now == stamp || now == failed {
		return nil, ""
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		c.log.Warn().Err(err).Msg("the admin TLS certificate changed but does not load; keeping the one in use")
		return nil, now
	}
	c.log.Info().Str("cert", c.certFile).Msg("admin TLS certificate reloaded")
	return &cert, now
}
