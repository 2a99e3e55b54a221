package sender

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/walhook/walhook/internal/netguard"
)

// The HTTP/1.1 path: most webhook attempts are one small POST on a kept
// connection, and net/http spends more CPU on its connection machinery
// than on the exchange itself (a reader and a writer goroutine per
// connection, channel hand-offs and allocations per request; see
// docs/operations.md, "The one-event path"). h1 makes the same exchange
// synchronously in the caller's goroutine: the request's head and body in
// one write from a reused buffer, the response's head parsed in place for
// the fields an attempt needs, the body read through the same capped
// reader as net/http's. The dialer and its SSRF guard, the TLS settings,
// the timeout and the outcome are the same as net/http's; requests h1
// does not handle (a proxy, HTTP/2, unusual headers) go through net/http.

// h1 limits, as net/http's where it has one.
const (
	h1MaxHeaderBytes = 64 << 10 // the response head (MaxResponseHeaderBytes)
	h1Max1xx         = 5        // informational answers before the final one
	h1IdleTimeout    = 90 * time.Second
	// h1CheckIdle: a connection idle this long is checked before use: a
	// server closes idle keep-alive connections after its own timeout
	// (5 s in Node), and a request written to one would fail.
	h1CheckIdle = time.Second
	// h1SweepEvery is how often idle connections are closed past
	// h1IdleTimeout, or once their server has closed them.
	h1SweepEvery  = 5 * time.Second
	h1DialTimeout = 10 * time.Second
	// h1KeepBuffer caps the request buffers kept for reuse; a larger
	// request (a batch) allocates its own.
	h1KeepBuffer = 256 << 10
)

// h1Target is how a URL is sent over HTTP/1.1: set once per URL by
// newH1Target, read-only after, but for ready.
type h1Target struct {
	key   string // the idle pool's key: scheme and address
	addr  string // host:port to dial
	tls   *tls.Config
	plain bool        // http://, whose connections the guard judges more strictly
	head  []byte      // "POST <uri> HTTP/1.1\r\nHost: <host>\r\n"
	auth  []string    // "Basic …" from the URL's user info, or nil
	ready atomic.Bool // https: net/http found that the server speaks HTTP/1.1, not HTTP/2
}

// newH1Target returns how u is sent over HTTP/1.1, or nil when it must go
// through net/http: a scheme other than http or https, a host that is not
// plain ASCII (net/http converts it to punycode) or carries a zone.
func newH1Target(u *url.URL, base *tls.Config) *h1Target {
	host := u.Host
	if host == "" || u.Opaque != "" {
		return nil
	}
	for i := 0; i < len(host); i++ {
		if b := host[i]; b <= ' ' || b >= 0x7f || b == '%' {
			return nil
		}
	}
	t := &h1Target{}
	port := u.Port()
	switch u.Scheme {
	case "http":
		t.plain = true
		if port == "" {
			port = "80"
		}
	case "https":
		if port == "" {
			port = "443"
		}
		t.tls = base.Clone()
		t.tls.ServerName = u.Hostname()
		t.tls.NextProtos = []string{"http/1.1"}
	default:
		return nil
	}
	t.addr = net.JoinHostPort(u.Hostname(), port)
	t.key = u.Scheme + "://" + t.addr
	t.head = fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: %s\r\n", u.RequestURI(), host)
	if u.User != nil {
		pass, _ := u.User.Password()
		t.auth = []string{"Basic " + base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+pass))}
	}
	return t
}

// usable reports whether requests to t may take the HTTP/1.1 path now.
func (t *h1Target) usable() bool { return t != nil && (t.plain || t.ready.Load()) }

// h1Pool holds the HTTP/1.1 path's idle connections, the most recently
// used of each address on top.
type h1Pool struct {
	guard   *netguard.Guard
	maxIdle int
	// dial opens a TCP connection; a test may wrap it.
	dial func(ctx context.Context, d *net.Dialer, addr string) (net.Conn, error)

	// watches holds a *ctxWatch per context Done channel in use.
	watches  sync.Map
	nWatches atomic.Int64

	mu     sync.Mutex
	idle   map[string][]*h1Conn
	sweep  *time.Timer // runs while connections are idle
	closed bool
}

func newH1Pool(guard *netguard.Guard, maxIdle int) *h1Pool {
	return &h1Pool{
		guard:   guard,
		maxIdle: maxIdle,
		idle:    make(map[string][]*h1Conn),
		dial: func(ctx context.Context, d *net.Dialer, addr string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr)
		},
	}
}

// h1Conn is one HTTP/1.1 connection, used by one request at a time.
type h1Conn struct {
	key  string
	nc   net.Conn // *tls.Conn for https
	br   *bufio.Reader
	body h1Body
	// idleAt is when the request that last used it started: a little
	// before it went idle, which only makes the idle checks come sooner.
	idleAt time.Time
}

// writeBuffers are the reused request buffers.
var writeBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// send makes the attempt over HTTP/1.1; ok is false, and nothing was
// sent, when its headers need net/http (a name or value it would refuse,
// or one it writes itself).
func (p *h1Pool) send(ctx context.Context, t *h1Target, req Request, maxBytes int64, start time.Time) (res Result, ok bool) {
	bp := writeBuffers.Get().(*[]byte)
	b, ok := appendRequest((*bp)[:0], t, req)
	defer func() {
		if cap(b) <= h1KeepBuffer {
			*bp = b[:0]
			writeBuffers.Put(bp)
		}
	}()
	if !ok {
		return Result{}, false
	}
	if ctx.Err() != nil {
		return Result{Err: context.Cause(ctx)}, true
	}
	var deadline time.Time
	if req.Timeout > 0 {
		deadline = start.Add(req.Timeout)
	}
	for try := 0; ; try++ {
		c, reused, err := p.get(ctx, t, start, deadline, try > 0)
		if err != nil {
			return Result{Err: p.cause(ctx, err, req.Timeout)}, true
		}
		c.idleAt = start
		res, retry := p.exchange(ctx, c, b, deadline, req.Timeout, maxBytes)
		res.NewConn = !reused
		// A kept connection the server closed just before the request
		// reached it: not a byte of an answer came, and the request is
		// sent once more on a new connection. net/http retries a POST
		// only when it knows nothing was written; here a server that
		// read the request and closed without a word gets it twice,
		// under the same webhook-id (at-least-once, as a retry would).
		if retry && reused && try == 0 && ctx.Err() == nil {
			continue
		}
		return res, true
	}
}

// cause is the error an attempt reports for err: ctx's cause when ctx
// ended, the request's timeout when the deadline passed.
func (p *h1Pool) cause(ctx context.Context, err error, timeout time.Duration) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if timeout > 0 && errors.Is(err, os.ErrDeadlineExceeded) {
		return timeoutCause(timeout)
	}
	return err
}

// aLongTimeAgo is a deadline that cuts a connection's pending I/O.
var aLongTimeAgo = time.Unix(1, 0)

// exchange writes the request b on c and reads the answer. retry reports
// a connection closed before any answer arrived.
func (p *h1Pool) exchange(ctx context.Context, c *h1Conn, b []byte, deadline time.Time, timeout time.Duration, maxBytes int64) (res Result, retry bool) {
	if err := c.nc.SetDeadline(deadline); err != nil {
		c.close()
		return Result{Err: err}, true
	}
	w := p.watcher(ctx)
	if w != nil && !w.add(c) {
		c.close()
		return Result{Err: context.Cause(ctx)}, false
	}
	keep := false
	defer func() {
		if w != nil && w.remove(c) {
			keep = false // ctx ended: the connection's deadline is cut
		}
		if keep {
			p.put(c)
		} else {
			c.close()
		}
	}()

	_, werr := c.nc.Write(b)
	// After a failed write the answer is still read: a server may refuse
	// a request (413) before reading all of it, and close.
	resp, err := c.readHead()
	if err != nil {
		if werr != nil {
			err = werr
		}
		return Result{Err: p.cause(ctx, err, timeout)}, !resp.any && !isTimeout(err)
	}
	res = Result{StatusCode: resp.status}
	if resp.retryAfter != "" {
		res.RetryAfter = parseRetryAfter(resp.retryAfter, time.Now())
	}
	if res.StatusCode >= 300 && res.StatusCode < 400 {
		res.Err = &RedirectError{StatusCode: res.StatusCode}
	}
	res.Response, res.Truncated = readBody(&c.body, c.body.n, maxBytes)
	keep = werr == nil && resp.keepAlive && c.body.done && c.br.Buffered() == 0
	return res, false
}

// maxWatchers bounds the contexts watched at once; past it each request
// watches its own (a context that never ends would otherwise stay).
const maxWatchers = 64

// ctxWatch holds the connections in use under one context, whose I/O is
// cut when the context ends: one context.AfterFunc for all the requests
// made under a context (the dispatcher makes all its attempts under one)
// rather than one per request.
type ctxWatch struct {
	mu    sync.Mutex
	conns map[*h1Conn]struct{}
	ended bool
	stop  func() bool // stops the AfterFunc
	own   bool        // one request's alone: stopped when it ends
}

// watcher returns the watch of ctx's connections, or nil when ctx never
// ends.
func (p *h1Pool) watcher(ctx context.Context) *ctxWatch {
	done := ctx.Done()
	if done == nil {
		return nil
	}
	if w, ok := p.watches.Load(done); ok {
		return w.(*ctxWatch)
	}
	w := &ctxWatch{conns: make(map[*h1Conn]struct{}, 1)}
	forget := func() {
		if p.watches.CompareAndDelete(done, w) {
			p.nWatches.Add(-1)
		}
	}
	w.stop = context.AfterFunc(ctx, func() {
		w.end()
		forget()
	})
	if p.nWatches.Add(1) > maxWatchers {
		p.nWatches.Add(-1)
		w.own = true
		return w
	}
	if v, loaded := p.watches.LoadOrStore(done, w); loaded {
		p.nWatches.Add(-1)
		w.stop()
		return v.(*ctxWatch)
	}
	if ctx.Err() != nil {
		forget() // ended before it was stored: its AfterFunc found nothing to forget
	}
	return w
}

// add records c as in use; false when the context has ended.
func (w *ctxWatch) add(c *h1Conn) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ended {
		return false
	}
	w.conns[c] = struct{}{}
	return true
}

// remove records c as no longer in use, reporting whether the context
// ended meanwhile (its deadline may be cut).
func (w *ctxWatch) remove(c *h1Conn) (ended bool) {
	if w.own && w.stop() {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.conns, c)
	return w.ended
}

// end cuts the I/O of the connections in use: SetDeadline does not block.
func (w *ctxWatch) end() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ended = true
	for c := range w.conns {
		c.nc.SetDeadline(aLongTimeAgo)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// appendRequest appends the request's head and body to b: ok is false
// when a header needs net/http.
func appendRequest(b []byte, t *h1Target, req Request) ([]byte, bool) {
	b = append(b, t.head...)
	var hasType, hasAgent, hasAuth bool
	for k, vs := range req.Header {
		switch {
		case !validName(k):
			return b, false
		case k == "Content-Type":
			hasType = true
		case k == "User-Agent":
			hasAgent = true
		case k == "Authorization":
			hasAuth = true
		case k == "Host", k == "Content-Length", k == "Transfer-Encoding", k == "Trailer", k == "Connection":
			return b, false // net/http writes these itself
		}
		for _, v := range vs {
			if !validValue(v) {
				return b, false
			}
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, trimSpace(v)...)
			b = append(b, "\r\n"...)
		}
	}
	// The defaults go into the caller's header too, as on the net/http
	// path: the attempt's log shows what was sent.
	if !hasType {
		b = appendDefault(b, req.Header, "Content-Type", jsonContentType)
	}
	if !hasAgent {
		b = appendDefault(b, req.Header, "User-Agent", userAgent)
	}
	if t.auth != nil && !hasAuth {
		b = appendDefault(b, req.Header, "Authorization", t.auth)
	}
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(req.Body)), 10)
	b = append(b, "\r\n\r\n"...)
	return append(b, req.Body...), true
}

func appendDefault(b []byte, h http.Header, k string, v []string) []byte {
	if h != nil {
		h[k] = v
	}
	b = append(b, k...)
	b = append(b, ": "...)
	b = append(b, v[0]...)
	return append(b, "\r\n"...)
}

// validName reports whether k is a header name net/http sends as it is:
// a canonical token (non-canonical keys are rare enough to leave to it).
func validName(k string) bool {
	if k == "" {
		return false
	}
	upper := true
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '-':
			upper = true
			continue
		case 'a' <= c && c <= 'z':
			if upper {
				return false
			}
		case 'A' <= c && c <= 'Z':
			if !upper {
				return false
			}
		case '0' <= c && c <= '9':
		default:
			return false
		}
		upper = false
	}
	return true
}

// validValue reports whether v holds no control character but tab, as
// net/http requires.
func validValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

func trimSpace(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// get returns an idle connection to t, or a new one (always when fresh);
// reused says which.
func (p *h1Pool) get(ctx context.Context, t *h1Target, now, deadline time.Time, fresh bool) (c *h1Conn, reused bool, err error) {
	for !fresh {
		p.mu.Lock()
		list := p.idle[t.key]
		if n := len(list); n > 0 {
			c = list[n-1]
			list[n-1] = nil
			p.idle[t.key] = list[:n-1]
		}
		p.mu.Unlock()
		if c == nil {
			break
		}
		if now.Sub(c.idleAt) < h1CheckIdle || alive(c.nc) {
			return c, true, nil
		}
		c.close()
		c = nil
	}
	c, err = p.connect(ctx, t, deadline)
	return c, false, err
}

// connect dials t through the guard and, for https, makes the TLS
// handshake, within the request's deadline and h1DialTimeout each.
func (p *h1Pool) connect(ctx context.Context, t *h1Target, deadline time.Time) (*h1Conn, error) {
	d := &net.Dialer{Timeout: h1DialTimeout, KeepAlive: 30 * time.Second, Deadline: deadline}
	if p.guard != nil {
		d.Control = p.guard.Control
		if t.plain {
			d.Control = p.guard.PlaintextControl
		}
	}
	nc, err := p.dial(ctx, d, t.addr)
	if err != nil {
		return nil, err
	}
	if t.tls != nil {
		hd := time.Now().Add(h1DialTimeout)
		if !deadline.IsZero() && deadline.Before(hd) {
			hd = deadline
		}
		nc.SetDeadline(hd)
		tc := tls.Client(nc, t.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, err
		}
		nc = tc
	}
	c := &h1Conn{key: t.key, nc: nc, br: bufio.NewReaderSize(nc, 4096)}
	c.body.br = c.br
	return c, nil
}

// put keeps c idle for the next request to its address, or closes it.
func (p *h1Pool) put(c *h1Conn) {
	p.mu.Lock()
	if p.closed || len(p.idle[c.key]) >= p.maxIdle {
		p.mu.Unlock()
		c.close()
		return
	}
	p.idle[c.key] = append(p.idle[c.key], c)
	if p.sweep == nil {
		p.sweep = time.AfterFunc(h1SweepEvery, p.sweepIdle)
	}
	p.mu.Unlock()
}

// sweepIdle closes the connections idle past h1IdleTimeout and those
// whose server closed them; it checks them outside the lock, taking out
// only connections idle over h1CheckIdle, which requests rarely want.
func (p *h1Pool) sweepIdle() {
	now := time.Now()
	taken := map[string][]*h1Conn{}
	p.mu.Lock()
	for key, list := range p.idle {
		i := 0
		for i < len(list) && now.Sub(list[i].idleAt) >= h1CheckIdle {
			i++
		}
		if i > 0 {
			taken[key] = append([]*h1Conn(nil), list[:i]...)
			p.idle[key] = append(list[:0], list[i:]...)
		}
	}
	p.mu.Unlock()

	for key, list := range taken {
		kept := list[:0]
		for _, c := range list {
			if now.Sub(c.idleAt) >= h1IdleTimeout || !alive(c.nc) {
				c.close()
			} else {
				kept = append(kept, c)
			}
		}
		taken[key] = kept
	}

	var extra []*h1Conn
	p.mu.Lock()
	for key, kept := range taken {
		if p.closed {
			extra = append(extra, kept...)
			continue
		}
		list := append(kept, p.idle[key]...) // the older ones below
		if over := len(list) - p.maxIdle; over > 0 {
			extra = append(extra, list[:over]...)
			list = list[over:]
		}
		p.idle[key] = list
	}
	n := 0
	for key, list := range p.idle {
		if len(list) == 0 {
			delete(p.idle, key)
		}
		n += len(list)
	}
	if n > 0 && !p.closed {
		p.sweep.Reset(h1SweepEvery)
	} else {
		p.sweep = nil
	}
	p.mu.Unlock()
	for _, c := range extra {
		c.close()
	}
}

// close closes the idle connections; connections in use close when their
// request ends.
func (p *h1Pool) close() {
	p.mu.Lock()
	p.closed = true
	if p.sweep != nil {
		p.sweep.Stop()
		p.sweep = nil
	}
	p.mu.Unlock()
	p.watches.Range(func(done, w any) bool {
		if w.(*ctxWatch).stop() {
			p.watches.Delete(done)
			p.nWatches.Add(-1)
		}
		return true
	})
	p.closeIdle()
}

// closeIdle closes the idle connections.
func (p *h1Pool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = map[string][]*h1Conn{}
	p.mu.Unlock()
	for _, list := range idle {
		for _, c := range list {
			c.close()
		}
	}
}

func (c *h1Conn) close() { c.nc.Close() }

// alive reports whether an idle connection is still open with nothing
// unread: its server has neither closed it nor sent anything unasked.
func alive(nc net.Conn) bool {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	open := false
	err = rc.Control(func(fd uintptr) { open = peekOpen(fd) })
	return err == nil && open
}

// h1Head is what an attempt needs of a response's head.
type h1Head struct {
	status     int
	retryAfter string
	keepAlive  bool
	any        bool // some of the answer arrived
}

var errMalformed = errors.New("malformed HTTP response")

// readHead reads the response's head up to the final (non-1xx) status,
// and sets up c.body to read its body.
func (c *h1Conn) readHead() (h h1Head, err error) {
	size := 0
	for n1xx := 0; ; n1xx++ {
		line, err := c.line(&size)
		if len(line) > 0 || size > 0 {
			h.any = true
		}
		if err != nil {
			return h, err
		}
		var major11 bool
		if h.status, major11, err = parseStatus(line); err != nil {
			return h, err
		}
		h.keepAlive = major11
		var (
			length  int64 = -1
			chunked bool
			retry   []byte
		)
		for {
			line, err := c.line(&size)
			if err != nil {
				return h, err
			}
			if len(line) == 0 {
				break
			}
			if line[0] == ' ' || line[0] == '\t' {
				continue // obsolete line folding: a value this code does not read
			}
			name, value, ok := bytes.Cut(line, []byte(":"))
			if !ok {
				return h, fmt.Errorf("%w: header line without a colon", errMalformed)
			}
			value = bytes.TrimSpace(value)
			switch {
			case asciiEqualFold(name, "content-length"):
				u, err := strconv.ParseUint(string(value), 10, 63)
				n := int64(u)
				if err != nil || (length >= 0 && n != length) {
					return h, fmt.Errorf("%w: bad Content-Length %q", errMalformed, value)
				}
				length = n
			case asciiEqualFold(name, "transfer-encoding"):
				chunked = asciiEqualFold(value, "chunked")
				if !chunked {
					return h, fmt.Errorf("unsupported transfer encoding: %q", value)
				}
			case asciiEqualFold(name, "connection"):
				for tok := range bytes.SplitSeq(value, []byte(",")) {
					switch tok = bytes.TrimSpace(tok); {
					case asciiEqualFold(tok, "close"):
						h.keepAlive = false
					case asciiEqualFold(tok, "keep-alive") && !major11:
						h.keepAlive = true
					}
				}
			case asciiEqualFold(name, "retry-after"):
				retry = value
			}
		}
		if h.status >= 100 && h.status < 200 && h.status != http.StatusSwitchingProtocols {
			if n1xx >= h1Max1xx {
				return h, fmt.Errorf("%w: too many 1xx responses", errMalformed)
			}
			continue
		}
		h.retryAfter = string(retry)
		switch {
		case h.status == http.StatusSwitchingProtocols:
			c.body.reset(0)
			h.keepAlive = false
		case h.status == http.StatusNoContent || h.status == http.StatusNotModified:
			c.body.reset(0)
		case chunked:
			c.body.reset(-1)
			c.body.chunks = httputil.NewChunkedReader(c.br)
			if length >= 0 {
				h.keepAlive = false // both framings: a smuggling attempt or a broken proxy
			}
		case length >= 0:
			c.body.reset(length)
		default:
			c.body.reset(-1) // until the server closes
			h.keepAlive = false
		}
		return h, nil
	}
}

// line reads one line of the head without its line ending, counting its
// bytes in *size. A line longer than the buffer holds no field an attempt
// reads: it is skipped, returned as skippedLine.
func (c *h1Conn) line(size *int) ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	*size += len(line)
	long := false
	for err == bufio.ErrBufferFull && *size <= h1MaxHeaderBytes {
		long = true
		line, err = c.br.ReadSlice('\n')
		*size += len(line)
	}
	switch {
	case *size > h1MaxHeaderBytes:
		return nil, fmt.Errorf("server response headers exceeded %d bytes", h1MaxHeaderBytes)
	case err == io.EOF && *size > 0:
		return nil, io.ErrUnexpectedEOF
	case err != nil:
		return nil, err
	case long:
		return skippedLine, nil
	}
	return bytes.TrimSuffix(line[:len(line)-1], []byte("\r")), nil
}

// skippedLine stands for a line too long to read: it reads as a folded
// continuation line, which readHead skips, and as no status line.
var skippedLine = []byte("\t")

// parseStatus reads "HTTP/1.1 204 No Content".
func parseStatus(line []byte) (status int, http11 bool, err error) {
	proto, rest, ok := bytes.Cut(line, []byte(" "))
	switch {
	case !ok:
	case string(proto) == "HTTP/1.1":
		http11 = true
		fallthrough
	case string(proto) == "HTTP/1.0":
		if len(rest) < 3 || (len(rest) > 3 && rest[3] != ' ') {
			break
		}
		for _, d := range rest[:3] {
			if d < '0' || d > '9' {
				return 0, false, fmt.Errorf("%w: status line %q", errMalformed, truncate(string(line)))
			}
			status = status*10 + int(d-'0')
		}
		if status < 100 {
			break
		}
		return status, http11, nil
	}
	return 0, false, fmt.Errorf("%w: status line %q", errMalformed, truncate(string(line)))
}

func asciiEqualFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// h1Body reads a response's body off its connection: n bytes, chunks, or
// all until the server closes; done reports that it ended where its
// framing says, leaving the connection at the next response.
type h1Body struct {
	br     *bufio.Reader
	n      int64 // bytes left; -1: chunked or until close
	chunks io.Reader
	done   bool
}

func (b *h1Body) reset(n int64) {
	b.n, b.chunks, b.done = n, nil, n == 0
}

func (b *h1Body) Read(p []byte) (int, error) {
	switch {
	case b.done:
		return 0, io.EOF
	case b.chunks != nil:
		n, err := b.chunks.Read(p)
		if err == io.EOF {
			if err := b.trailer(); err != nil {
				return n, err
			}
			b.done = true
		}
		return n, err
	case b.n >= 0:
		if int64(len(p)) > b.n {
			p = p[:b.n]
		}
		n, err := b.br.Read(p)
		b.n -= int64(n)
		if b.n == 0 {
			b.done = true
			return n, io.EOF
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return n, err
	default:
		return b.br.Read(p)
	}
}

// trailer reads the trailer fields after the last chunk, up to the empty
// line that ends the response.
func (b *h1Body) trailer() error {
	size := 0
	c := h1Conn{br: b.br}
	for {
		line, err := c.line(&size)
		if err != nil {
			return err
		}
		if len(line) == 0 {
			return nil
		}
	}
}
