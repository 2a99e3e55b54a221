package sender

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/walhook/walhook/internal/netguard"
)

// Result is the outcome of one attempt.
type Result struct {
	StatusCode int           // 0 when no response arrived
	Duration   time.Duration // from the start of Send to the body read
	Response   []byte        // the response body, up to the cap
	Truncated  bool          // the body was longer than the cap or failed mid-read
	// RetryAfter is the response's Retry-After (seconds or HTTP date) as a
	// delay; 0 if absent. Bounding it is the caller's business.
	RetryAfter time.Duration
	// NewConn reports that the attempt opened a connection (and for https
	// made a TLS handshake) rather than reusing a kept one.
	NewConn bool
	// Err is why no acceptable response arrived: transport error,
	// *TimeoutError, *RedirectError, *netguard.RefusedError. A response
	// with a non-2xx, non-3xx status has a nil Err.
	Err error
}

// OK reports whether the endpoint accepted the delivery: a 2xx status and
// no error.
func (r Result) OK() bool { return r.Err == nil && r.StatusCode >= 200 && r.StatusCode < 300 }

// ErrorText says briefly why the attempt failed ("timeout after 15s",
// "connection refused", "redirect (302) not followed", "status 500"), or
// "" if it did not. It never contains the URL.
func (r Result) ErrorText() string {
	if r.Err != nil {
		return errorText(r.Err)
	}
	if r.OK() {
		return ""
	}
	return fmt.Sprintf("status %d", r.StatusCode)
}

// TimeoutError is an attempt that ran past its timeout.
type TimeoutError struct{ After time.Duration }

func (e *TimeoutError) Error() string { return "timeout after " + e.After.String() }

// RedirectError is a 3xx answer, which is a failure: redirects are not
// followed.
type RedirectError struct{ StatusCode int }

func (e *RedirectError) Error() string {
	return fmt.Sprintf("redirect (%d) not followed", e.StatusCode)
}

// maxErrorText caps ErrorText for errors of unknown shape.
const maxErrorText = 200

func errorText(err error) string {
	var (
		timeout  *TimeoutError
		redirect *RedirectError
		refused  *netguard.RefusedError
		dns      *net.DNSError
		certErr  *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		netErr   net.Error
	)
	switch {
	case errors.As(err, &timeout), errors.As(err, &redirect), errors.As(err, &refused):
		return err.Error()
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset by peer"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "host unreachable"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed before a response"
	case errors.As(err, &dns):
		if dns.IsNotFound {
			return "dns: no such host " + dns.Name
		}
		return "dns lookup of " + dns.Name + " failed"
	case errors.As(err, &unknown), errors.As(err, &hostname), errors.As(err, &certErr):
		return truncate("tls: " + err.Error())
	case errors.As(err, &netErr) && netErr.Timeout():
		return "connect timeout"
	}
	return truncate(err.Error())
}

func truncate(s string) string {
	if len(s) <= maxErrorText {
		return s
	}
	n := maxErrorText
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
