// Package sender is the HTTP client that makes every webhook attempt: a
// POST with keep-alive connection reuse, a per-request timeout covering the
// response headers and body, redirects never followed, and the response
// body read up to a cap.
//
// Requests over HTTP/1.1 take the package's own path (h1.go), made in the
// caller's goroutine; HTTP/2, proxied requests and headers it leaves alone
// go through net/http. Both dial through the same guard with the same TLS
// settings and report the same Result.
package sender

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/walhook/walhook/internal/netguard"
	"github.com/walhook/walhook/internal/version"
)

// Defaults for Options fields left zero.
const (
	DefaultMaxResponseBytes = 64 << 10
	// DefaultMaxIdleConnsPerHost keeps a connection for every request an
	// endpoint may have in flight (limit.DefaultCeiling): with fewer, an
	// endpoint at its limit would open and close connections all the time.
	DefaultMaxIdleConnsPerHost = 256
)

// drainBytes is how much of a response beyond the cap is read and
// discarded so its connection can be reused; past it the connection is
// closed.
const drainBytes = 64 << 10

// Options configures a Client.
type Options struct {
	// MaxResponseBytes caps the response body kept; default 64 KiB.
	MaxResponseBytes int64
	// Guard, when set, refuses URLs and connections to networks that
	// API-registered endpoints may not reach (and disables proxies, whose
	// address the guard would judge instead of the endpoint's). Nil means
	// unrestricted: HCL endpoints are operator-trusted. It must not change
	// after New: its verdict on each URL is cached.
	Guard *netguard.Guard
	// MaxIdleConnsPerHost caps idle keep-alive connections kept per host;
	// default 256.
	MaxIdleConnsPerHost int
	// RootCAs, when set, are the certificate authorities HTTPS endpoints
	// are verified against (LoadRootCAs: the system's and the operator's
	// own); nil: the system's.
	RootCAs *x509.CertPool
	// NetHTTP sends every request through net/http, with the HTTP/1.1
	// path (h1.go) off: for comparing the two, or should that path ever
	// misbehave with a receiver (WALHOOK_HTTP_CLIENT=net/http).
	NetHTTP bool
	// HTTP1Only offers HTTPS endpoints HTTP/1.1 alone (delivery.http2 =
	// false): no HTTP/2, even where the server prefers it.
	HTTP1Only bool
}

// Client sends webhook attempts. It is safe for concurrent use.
type Client struct {
	// rt sends requests as they are: no redirect is followed, and unlike
	// http.Client it does not copy each request's header in case of one.
	rt       http.RoundTripper
	guard    *netguard.Guard
	maxBytes int64
	closers  []*http.Transport
	// h1 sends HTTP/1.1 requests synchronously (h1.go); nil with NetHTTP.
	h1 *h1Pool
	// tlsBase is the TLS configuration of both paths.
	tlsBase *tls.Config
	// http1Only: HTTPS endpoints are not offered HTTP/2.
	http1Only bool
	// proxy picks a proxy for a URL (nil: none); the HTTP/1.1 path does
	// not take requests that go through one.
	proxy func(*http.Request) (*url.URL, error)
	// targets caches parsed and checked URLs (see target); nTargets
	// counts its entries.
	targets  sync.Map // string -> *target
	nTargets atomic.Int64
}

// Request is one attempt: a POST of Body to URL.
type Request struct {
	URL string
	// Header holds the signature and custom headers; it may override the
	// Content-Type (application/json) and User-Agent set by default. Send
	// uses it as the request's header, adding those two when absent: give
	// each attempt a header of its own.
	Header http.Header
	Body   []byte
	// Timeout covers connecting, headers and body; zero leaves the request
	// bounded by ctx alone. Endpoints always set theirs (the default is
	// resolved in package config).
	Timeout time.Duration
}

// New returns a Client.
func New(opts Options) *Client {
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if opts.MaxIdleConnsPerHost <= 0 {
		opts.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	}
	// One TLS session cache for both paths: a connection opened again to
	// an endpoint resumes its session instead of a full handshake.
	sessions := tls.NewLRUClientSessionCache(tlsSessions)
	c := &Client{guard: opts.Guard, maxBytes: opts.MaxResponseBytes, tlsBase: tlsConfig(opts, sessions), http1Only: opts.HTTP1Only}
	if !opts.NetHTTP {
		c.h1 = newH1Pool(opts.Guard, opts.MaxIdleConnsPerHost)
	}
	var rt http.RoundTripper
	if opts.Guard == nil {
		t := newTransport(opts, nil, sessions)
		t.Proxy = http.ProxyFromEnvironment
		c.proxy = t.Proxy
		rt, c.closers = t, []*http.Transport{t}
	} else {
		// Plain http connections obey a stricter rule than https ones, and
		// a dialer cannot see the URL's scheme: one transport for each.
		secure := newTransport(opts, opts.Guard.Control, sessions)
		plain := newTransport(opts, opts.Guard.PlaintextControl, sessions)
		rt, c.closers = schemeRouter{secure: secure, plain: plain}, []*http.Transport{secure, plain}
	}
	c.rt = rt
	return c
}

func newTransport(opts Options, control func(network, address string, c syscall.RawConn) error, sessions tls.ClientSessionCache) *http.Transport {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: control}
	// HTTP/2 is negotiated (ALPN) with HTTPS endpoints that offer it, over
	// this same guarded dialer: ForceAttemptHTTP2 keeps it on despite the
	// custom DialContext and TLS config. One connection then carries many
	// requests at once. With HTTP1Only an empty TLSNextProto turns it off.
	var next map[string]func(string, *tls.Conn) http.RoundTripper
	if opts.HTTP1Only {
		next = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Transport{
		TLSNextProto:           next,
		TLSClientConfig:        tlsConfig(opts, sessions),
		DialContext:            d.DialContext,
		ForceAttemptHTTP2:      !opts.HTTP1Only,
		MaxIdleConnsPerHost:    opts.MaxIdleConnsPerHost,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
		DisableCompression:     true,
	}
}

// tlsSessions is how many endpoints' TLS sessions a client keeps for
// resumption.
const tlsSessions = 1024

// tlsConfig is the TLS configuration for HTTPS endpoints: each path and
// transport has its own (net/http adds its protocols to its own), sharing
// the session cache.
func tlsConfig(opts Options, sessions tls.ClientSessionCache) *tls.Config {
	return &tls.Config{RootCAs: opts.RootCAs, MinVersion: tls.VersionTLS12, ClientSessionCache: sessions}
}

// schemeRouter sends http:// requests through plain and the rest through
// secure.
type schemeRouter struct{ secure, plain *http.Transport }

func (r schemeRouter) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" {
		return r.plain.RoundTrip(req)
	}
	return r.secure.RoundTrip(req)
}

// Close closes idle connections.
func (c *Client) Close() {
	for _, t := range c.closers {
		t.CloseIdleConnections()
	}
	if c.h1 != nil {
		c.h1.close()
	}
}

// Send makes one attempt and reports its outcome; it never returns early
// on a bad status, only on the request's timeout or ctx.
func (c *Client) Send(ctx context.Context, req Request) Result {
	start := time.Now()
	res := c.send(ctx, req, start)
	res.Duration = time.Since(start)
	return res
}

func (c *Client) send(ctx context.Context, req Request, start time.Time) Result {
	t := c.target(req.URL)
	if t.refused != nil {
		return Result{Err: t.refused}
	}
	if t.err != nil {
		return Result{Err: t.err}
	}
	if c.h1 != nil && t.h1.usable() {
		if res, ok := c.h1.send(ctx, t.h1, req, c.maxBytes, start); ok {
			return res
		}
	}
	if req.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, req.Timeout, timeoutCause(req.Timeout))
		defer cancel()
	}

	// Whether the request got a new connection, for Result.NewConn.
	var newConn bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) { newConn = !info.Reused },
	})
	hr := newRequest(ctx, t.url, req.Header, req.Body)
	if hr.Header.Get("Content-Type") == "" {
		hr.Header["Content-Type"] = jsonContentType
	}
	if hr.Header.Get("User-Agent") == "" {
		hr.Header["User-Agent"] = userAgent
	}
	if u := hr.URL.User; u != nil && hr.Header.Get("Authorization") == "" {
		// Credentials in the URL (https://user:pass@host/) are sent as
		// basic auth, as http.Client would.
		pass, _ := u.Password()
		hr.SetBasicAuth(u.Username(), pass)
	}

	resp, err := c.rt.RoundTrip(hr)
	if err != nil {
		if ctx.Err() != nil {
			return Result{Err: context.Cause(ctx), NewConn: newConn}
		}
		return Result{Err: unwrapURLError(err), NewConn: newConn}
	}
	defer resp.Body.Close()
	if t.h1 != nil && resp.ProtoMajor == 1 && resp.TLS != nil && !t.h1.ready.Load() {
		t.h1.ready.Store(true) // no HTTP/2 here: the next requests take the HTTP/1.1 path
	}

	res := Result{StatusCode: resp.StatusCode, NewConn: newConn}
	if v := resp.Header.Get("Retry-After"); v != "" {
		res.RetryAfter = parseRetryAfter(v, time.Now())
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		res.Err = &RedirectError{StatusCode: resp.StatusCode}
	}
	res.Response, res.Truncated = readBody(resp.Body, resp.ContentLength, c.maxBytes)
	return res
}

// Default header values, shared read-only by every request.
var (
	jsonContentType = []string{"application/json"}
	userAgent       = []string{version.UserAgent()}
)

// bodyBuffers are reused to read response bodies; what is kept is copied
// out, so a typical empty or short answer costs one small allocation.
var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readBody reads up to the cap, then drains a little more so the
// connection can be reused. A body that fails mid-read (timeout, reset)
// keeps what was read and counts as truncated; the status stands.
func readBody(body io.Reader, contentLength, maxBytes int64) ([]byte, bool) {
	if contentLength == 0 {
		return nil, false
	}
	buf := bodyBuffers.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 2*int(maxBytes) {
			buf.Reset()
			bodyBuffers.Put(buf)
		}
	}()
	buf.Reset()
	truncated := readAtMost(buf, body, maxBytes+1) != nil
	b := buf.Bytes()
	if int64(len(b)) > maxBytes {
		b, truncated = b[:maxBytes], true
		io.CopyN(io.Discard, body, drainBytes)
	}
	if len(b) == 0 {
		return nil, truncated
	}
	return bytes.Clone(b), truncated
}

// readAtMost appends to buf what r holds, up to n bytes, as
// buf.ReadFrom(io.LimitReader(r, n)) would without allocating the limit
// reader; it returns the read error other than io.EOF.
func readAtMost(buf *bytes.Buffer, r io.Reader, n int64) error {
	for n > 0 {
		buf.Grow(int(min(n, bytes.MinRead)))
		free := buf.AvailableBuffer()
		free = free[:min(int64(cap(free)), n)]
		k, err := r.Read(free)
		buf.Write(free[:k])
		n -= int64(k)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// unwrapURLError drops the *url.Error wrapper, whose text repeats the
// URL (which may hold a token), keeping the cause.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// parseRetryAfter reads a Retry-After header (delay seconds or an HTTP
// date) as a delay from now; 0 when absent, invalid or past.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, int64(365*24*time.Hour/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
