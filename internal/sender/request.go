package sender

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// target is an endpoint URL as parsed and judged once: the parsed URL
// (shared read-only by every request to it: a RoundTripper does not modify
// its request), or why requests to it are refused.
type target struct {
	url     *url.URL
	refused error // the guard's verdict on the URL
	err     error // the URL does not parse
	// h1 is how the URL is sent over HTTP/1.1 (h1.go); nil: through
	// net/http alone.
	h1 *h1Target
}

// maxTargets bounds the parsed-URL cache: past it the cache starts afresh,
// so URLs no longer in use (a webhook deleted or moved) do not stay.
const maxTargets = 4096

// target returns the parsed and checked URL raw, from the cache when it
// was seen before. A guard's verdict depends only on the URL's text (its
// addresses are judged when connecting), so it is cached with it.
func (c *Client) target(raw string) *target {
	if t, ok := c.targets.Load(raw); ok {
		return t.(*target)
	}
	t := &target{refused: c.guard.CheckURL(raw)}
	if t.refused == nil {
		u, err := url.Parse(raw)
		if err != nil {
			t.err = fmt.Errorf("building request: %w", unwrapURLError(err))
		} else {
			u.Host = removeEmptyPort(u.Host)
			t.url = u
			if c.h1 != nil && c.direct(u) {
				if t.h1 = newH1Target(u, c.tlsBase); t.h1 != nil && c.http1Only {
					t.h1.ready.Store(true) // no HTTP/2 to find out about
				}
			}
		}
	}
	if c.nTargets.Add(1) > maxTargets {
		c.targets.Clear()
		c.nTargets.Store(1)
	}
	c.targets.Store(raw, t)
	return t
}

// direct reports whether requests to u go to its server, not through a
// proxy.
func (c *Client) direct(u *url.URL) bool {
	if c.proxy == nil {
		return true
	}
	p, err := c.proxy(&http.Request{URL: u})
	return err == nil && p == nil
}

// removeEmptyPort strips a trailing ":" with no port, as
// http.NewRequest does.
func removeEmptyPort(host string) string {
	if n := len(host); n > 0 && host[n-1] == ':' {
		return host[:n-1]
	}
	return host
}

// newRequest is http.NewRequestWithContext(ctx, "POST", u, body) for a
// URL parsed once, with h as its header (a new one when nil). The body is
// a bytes.Reader behind io.NopCloser, which net/http recognises as held
// in memory: it writes headers and body in one system call (another body
// type makes it flush the headers first, a second write per request).
func newRequest(ctx context.Context, u *url.URL, h http.Header, body []byte) *http.Request {
	if h == nil {
		h = make(http.Header, 2)
	}
	r := &http.Request{
		Method:     http.MethodPost,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Host:       u.Host,
		Body:       http.NoBody,
	}
	if len(body) > 0 {
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		// A transport that must retry the request on a new connection
		// reads the body again from the start.
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	return r.WithContext(ctx)
}

// timeoutCauses holds one *TimeoutError per timeout in use (endpoints
// have few distinct timeouts), so a request does not allocate its cause.
var timeoutCauses sync.Map // time.Duration -> *TimeoutError

func timeoutCause(d time.Duration) error {
	if e, ok := timeoutCauses.Load(d); ok {
		return e.(*TimeoutError)
	}
	e, _ := timeoutCauses.LoadOrStore(d, &TimeoutError{After: d})
	return e.(*TimeoutError)
}
