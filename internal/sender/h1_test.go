package sender

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walhook/walhook/internal/netguard"
)

// scripted is a raw HTTP/1.1 server whose answers a test writes byte for
// byte, for what net/http's server never sends.
type scripted struct {
	url   string
	conns atomic.Int64 // connections accepted
	reqs  atomic.Int64 // requests read in full
}

// scriptServer starts a scripted server: it reads each request (head and
// Content-Length body) and calls respond with the request's number (from
// 1) and its connection; the connection closes when respond returns false.
func scriptServer(tb testing.TB, respond func(n int64, c net.Conn) bool) *scripted {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &scripted{url: "http://" + ln.Addr().String() + "/hook"}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	tb.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for readRequest(r) {
					if !respond(s.reqs.Add(1), c) {
						return
					}
				}
			})
		}
	})
	return s
}

// answer is a scripted server's answer: resp to every request, the
// connection kept when keep.
func answer(resp string, keep bool) func(int64, net.Conn) bool {
	return func(_ int64, c net.Conn) bool {
		_, err := io.WriteString(c, resp)
		return err == nil && keep
	}
}

// readRequest reads one request's head and Content-Length body.
func readRequest(r *bufio.Reader) bool {
	n := int64(0)
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return false
		}
		if len(line) <= 2 {
			break
		}
		if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
			n, _ = strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
		}
	}
	_, err := r.Discard(int(n))
	return err == nil
}

func sendTo(t *testing.T, c *Client, url string) Result {
	t.Helper()
	return c.Send(context.Background(), Request{URL: url, Body: []byte(`{"n":1}`), Timeout: 5 * time.Second})
}

// TestH1Framing sends three requests to servers answering in each framing
// and checks the status, the body, and whether the connection was kept:
// only where the response's framing says where it ends and nothing says
// close.
func TestH1Framing(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		answer   string
		status   int
		body     string
		conns    int64 // for three requests
		retryIn  time.Duration
		wantFail string
	}{
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, "hello", 1, 0, ""},
		{"no body", "HTTP/1.1 204 No Content\r\n\r\n", 204, "", 1, 0, ""},
		{"chunked with trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n", 200, "hello world", 1, 0, ""},
		{"informational first", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok", 201, "ok", 1, 0, ""},
		{"connection close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", 200, "ok", 3, 0, ""},
		{"http/1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", 200, "ok", 1, 0, ""},
		{"retry-after, lower case", "HTTP/1.1 429 Too Many Requests\r\nretry-after: 7\r\ncontent-length: 0\r\n\r\n", 429, "", 1, 7 * time.Second, ""},
		{"both framings", "HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", 200, "ok", 3, 0, ""},
		{"folded and long headers", "HTTP/1.1 200 OK\r\nX-Long: " + strings.Repeat("a", 10000) + "\r\nX-Folded: a\r\n b\r\nContent-Length: 2\r\n\r\nok", 200, "ok", 1, 0, ""},
		{"conflicting lengths", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", 0, "", 3, 0, "malformed HTTP response"},
		{"signed length", "HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok", 0, "", 3, 0, "bad Content-Length"},
		{"other transfer coding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nok", 0, "", 3, 0, "unsupported transfer encoding"},
		{"not http", "SSH-2.0-OpenSSH_9.6\r\n\r\n", 0, "", 3, 0, "malformed HTTP response"},
		{"huge head", "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-A: "+strings.Repeat("b", 1000)+"\r\n", 70) + "\r\n", 0, "", 3, 0, "exceeded 65536 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := scriptServer(t, func(_ int64, c net.Conn) bool {
				_, err := io.WriteString(c, tc.answer)
				return err == nil && tc.wantFail == "" && !strings.Contains(tc.answer, "close")
			})
			c := newClient(t, Options{})
			for i := range 3 {
				res := sendTo(t, c, srv.url)
				if tc.wantFail != "" {
					if res.Err == nil || !strings.Contains(res.ErrorText(), tc.wantFail) {
						t.Fatalf("request %d: %+v %q, want an error: %s", i, res, res.ErrorText(), tc.wantFail)
					}
					continue
				}
				if res.Err != nil || res.StatusCode != tc.status || string(res.Response) != tc.body || res.Truncated || res.RetryAfter != tc.retryIn {
					t.Fatalf("request %d: %+v %q, want %d %q", i, res, res.ErrorText(), tc.status, tc.body)
				}
			}
			if n := srv.conns.Load(); n != tc.conns {
				t.Errorf("%d connections for 3 requests, want %d", n, tc.conns)
			}
		})
	}
}

// TestH1BodyUntilClose reads a body that ends when the server closes, and
// opens a new connection for the next request.
func TestH1BodyUntilClose(t *testing.T) {
	t.Parallel()
	srv := scriptServer(t, answer("HTTP/1.1 500 Internal Server Error\r\n\r\noops", false))
	c := newClient(t, Options{})
	for i := range 2 {
		if res := sendTo(t, c, srv.url); res.StatusCode != 500 || string(res.Response) != "oops" || res.ErrorText() != "status 500" {
			t.Fatalf("request %d: %+v %q", i, res, res.ErrorText())
		}
	}
	if n := srv.conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

// TestH1ServerClosedKeptConnection: a server that closes a kept
// connection after answering (as on its keep-alive timeout) costs the next
// request nothing: it goes again on a new connection, once, whether the
// close is seen before the request (an idle connection checked) or only
// after it was written.
func TestH1ServerClosedKeptConnection(t *testing.T) {
	t.Parallel()
	srv := scriptServer(t, answer("HTTP/1.1 204 No Content\r\n\r\n", false)) // closes without saying so
	c := newClient(t, Options{})
	for i := range 5 {
		if res := sendTo(t, c, srv.url); !res.OK() {
			t.Fatalf("request %d: %+v %q", i, res, res.ErrorText())
		}
	}
	if n, r := srv.conns.Load(), srv.reqs.Load(); n != 5 || r != 5 {
		t.Errorf("%d connections and %d requests for 5 sends, want 5 and 5", n, r)
	}

	// A connection the server closed while it was idle is not used.
	var seen atomic.Int64
	srv2 := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	srv2.Config.IdleTimeout = 50 * time.Millisecond
	srv2.Start()
	t.Cleanup(srv2.Close)
	c2 := newClient(t, Options{})
	sendTo(t, c2, srv2.URL)
	time.Sleep(h1CheckIdle + 100*time.Millisecond) // idle past the server's timeout and the client's check
	if res := sendTo(t, c2, srv2.URL); !res.OK() {
		t.Fatalf("after the server's idle timeout: %+v %q", res, res.ErrorText())
	}
	if n := seen.Load(); n != 2 {
		t.Errorf("server saw %d requests, want 2", n)
	}
}

// TestH1NotRetriedAfterAnAnswerStarted: a connection that fails after the
// answer began is an error, not sent again.
func TestH1NotRetriedAfterAnAnswerStarted(t *testing.T) {
	t.Parallel()
	srv := scriptServer(t, func(n int64, c net.Conn) bool {
		if n == 1 {
			io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
			return true
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-")
		return false
	})
	c := newClient(t, Options{})
	sendTo(t, c, srv.url)
	res := sendTo(t, c, srv.url)
	if res.Err == nil || res.ErrorText() != "connection closed before a response" {
		t.Errorf("cut answer: %+v %q", res, res.ErrorText())
	}
	if n := srv.reqs.Load(); n != 2 {
		t.Errorf("server read %d requests, want 2 (no retry)", n)
	}
}

// TestH1UnsolicitedBytes: bytes after a response (a second, unasked
// response) make its connection unusable; the next request takes a new
// one and gets its own answer.
func TestH1UnsolicitedBytes(t *testing.T) {
	t.Parallel()
	srv := scriptServer(t, func(n int64, c net.Conn) bool {
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n%dHTTP/1.1 500 Bad\r\nContent-Length: 0\r\n\r\n", n%10)
		return true
	})
	c := newClient(t, Options{})
	for i := range 3 {
		if res := sendTo(t, c, srv.url); res.StatusCode != 200 || string(res.Response) != fmt.Sprint(i+1) {
			t.Fatalf("request %d: %+v %q", i, res, res.Response)
		}
	}
	if n := srv.conns.Load(); n != 3 {
		t.Errorf("%d connections, want 3", n)
	}
}

// TestH1EarlyRefusal: a server that refuses a large request from its head
// and closes without reading the body gets its answer reported (413), not
// the failed write.
func TestH1EarlyRefusal(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadSlice('\n')
			if err != nil || len(line) <= 2 {
				break
			}
		}
		io.WriteString(c, "HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Length: 8\r\n\r\ntoo big!")
		// Read on slowly, so the client's write blocks rather than
		// resets, as a server that stops reading would have it.
		c.(*net.TCPConn).CloseWrite()
		time.Sleep(200 * time.Millisecond)
	}()
	c := newClient(t, Options{})
	body := bytes.Repeat([]byte("x"), 8<<20)
	res := c.Send(context.Background(), Request{URL: "http://" + ln.Addr().String() + "/", Body: body, Timeout: 2 * time.Second})
	if res.StatusCode != 413 || string(res.Response) != "too big!" {
		t.Errorf("early refusal: %+v %q, want 413", res, res.ErrorText())
	}
	<-done
}

// TestH1Cancel: a canceled attempt returns at once, and its connection
// (cut mid-request) is not used again.
func TestH1Cancel(t *testing.T) {
	t.Parallel()
	hold := make(chan struct{})
	srv := scriptServer(t, func(n int64, c net.Conn) bool {
		if n == 1 {
			<-hold
			return false
		}
		io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
		return true
	})
	defer close(hold)
	c := newClient(t, Options{})
	ctx, cancel := context.WithCancelCause(context.Background())
	go func() {
		for srv.reqs.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel(errors.New("shutting down"))
	}()
	res := c.Send(ctx, Request{URL: srv.url, Body: []byte(`{}`)})
	if res.Err == nil || res.Err.Error() != "shutting down" {
		t.Fatalf("canceled: %+v", res)
	}
	if res := sendTo(t, c, srv.url); !res.OK() {
		t.Fatalf("after a cancel: %+v %q", res, res.ErrorText())
	}
	if n := srv.conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

// TestH1Headers checks the request as a server parses it: the caller's
// headers, the defaults, and a request that the HTTP/1.1 path leaves to
// net/http (a header it would refuse) gets net/http's error.
func TestH1Headers(t *testing.T) {
	t.Parallel()
	got := make(chan *http.Request, 1)
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		got <- r
		w.WriteHeader(http.StatusNoContent)
	})
	c := newClient(t, Options{})
	h := http.Header{"Webhook-Id": {"evt_1"}, "X-Two": {"a", " b "}, "Content-Type": {"application/cloudevents+json"}}
	if res := c.Send(context.Background(), Request{URL: srv.URL + "/p/a%20th?q=1&r=%2F", Header: h, Body: []byte(`{"x":1}`), Timeout: 5 * time.Second}); !res.OK() {
		t.Fatalf("Send: %+v %q", res, res.ErrorText())
	}
	if h.Get("User-Agent") != userAgent[0] {
		t.Errorf("the caller's header lacks the User-Agent sent (the attempt log shows it): %v", h)
	}
	r := <-got
	body, _ := io.ReadAll(r.Body)
	if r.Method != "POST" || r.URL.RequestURI() != "/p/a%20th?q=1&r=%2F" || r.Proto != "HTTP/1.1" || string(body) != `{"x":1}` || r.ContentLength != 7 {
		t.Errorf("request %s %s %s %q (%d)", r.Method, r.URL.RequestURI(), r.Proto, body, r.ContentLength)
	}
	if r.Header.Get("Webhook-Id") != "evt_1" || strings.Join(r.Header["X-Two"], ",") != "a,b" || r.Header.Get("Content-Type") != "application/cloudevents+json" || r.Header.Get("User-Agent") != userAgent[0] {
		t.Errorf("headers %v", r.Header)
	}
	res := c.Send(context.Background(), Request{URL: srv.URL, Header: http.Header{"X-Bad": {"a\r\nInjected: 1"}}, Body: []byte(`{}`)})
	if res.Err == nil || !strings.Contains(res.ErrorText(), "invalid header field value") {
		t.Errorf("header with CRLF: %+v %q", res, res.ErrorText())
	}
	if res := c.Send(context.Background(), Request{URL: srv.URL, Header: http.Header{"x-lower": {"1"}}, Body: []byte(`{}`)}); !res.OK() {
		t.Errorf("non-canonical header name (net/http sends it): %+v %q", res, res.ErrorText())
	} else if r := <-got; r.Header.Get("X-Lower") != "1" {
		t.Errorf("non-canonical header name lost: %v", r.Header)
	}
}

// TestH1HTTPS: an HTTPS endpoint that speaks HTTP/1.1 only is found so by
// its first request (through net/http) and then takes the HTTP/1.1 path
// over TLS, checked against the CA and through the guard; one speaking
// HTTP/2 stays with net/http (TestSendHTTP2ThroughGuard).
func TestH1HTTPS(t *testing.T) {
	t.Parallel()
	srv, caFile, protos, conns := tlsServer(t, false)
	pool, err := LoadRootCAs(caFile)
	if err != nil {
		t.Fatal(err)
	}
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	c := newClient(t, Options{Guard: &netguard.Guard{Allow: loopback}, RootCAs: pool})
	var tlsConns atomic.Int64
	dial := c.h1.dial
	c.h1.dial = func(ctx context.Context, d *net.Dialer, addr string) (net.Conn, error) {
		tlsConns.Add(1)
		return dial(ctx, d, addr)
	}
	for i := range 10 {
		if res := sendTo(t, c, srv.URL); !res.OK() {
			t.Fatalf("request %d: %+v %q", i, res, res.ErrorText())
		}
		if p := <-protos; p != "HTTP/1.1" {
			t.Errorf("request %d over %s", i, p)
		}
	}
	if n, h1 := conns.Load(), tlsConns.Load(); n != 2 || h1 != 1 {
		t.Errorf("%d connections, %d of them the HTTP/1.1 path's; want 2 and 1 (net/http's first, then one kept)", n, h1)
	}

	// The guard judges the HTTP/1.1 path's connections too.
	c2 := newClient(t, Options{Guard: &netguard.Guard{}, RootCAs: pool})
	u, _ := url.Parse(srv.URL)
	tgt := c2.target("https://localhost:" + u.Port() + "/")
	tgt.h1.ready.Store(true)
	res := sendTo(t, c2, "https://localhost:"+u.Port()+"/")
	var refused *netguard.RefusedError
	if !errors.As(res.Err, &refused) {
		t.Errorf("guarded HTTP/1.1 path to loopback: %+v %q, want refused", res, res.ErrorText())
	}

	// A certificate the client does not trust fails the handshake.
	c3 := newClient(t, Options{})
	c3.target(srv.URL).h1.ready.Store(true)
	if res := sendTo(t, c3, srv.URL); !strings.HasPrefix(res.ErrorText(), "tls: ") {
		t.Errorf("untrusted certificate: %+v %q", res, res.ErrorText())
	}
	_ = tls.VersionTLS13
}

// TestH1Proxied: a URL that goes through a proxy is left to net/http.
func TestH1Proxied(t *testing.T) {
	t.Parallel()
	c := newClient(t, Options{})
	c.proxy = func(r *http.Request) (*url.URL, error) {
		if r.URL.Hostname() == "via.proxy" {
			return url.Parse("http://127.0.0.1:3128")
		}
		return nil, nil
	}
	if c.target("http://via.proxy/hook").h1 != nil {
		t.Error("a proxied URL takes the HTTP/1.1 path")
	}
	if c.target("http://direct.example/hook").h1 == nil {
		t.Error("a direct URL does not take the HTTP/1.1 path")
	}
	if c.target("http://bücher.example/hook").h1 != nil {
		t.Error("a non-ASCII host takes the HTTP/1.1 path (net/http converts it)")
	}
}

// TestH1Sweep: idle connections whose server closed them are closed by
// the sweep; open ones stay.
func TestH1Sweep(t *testing.T) {
	t.Parallel()
	closing := scriptServer(t, answer("HTTP/1.1 204 No Content\r\n\r\n", false))
	staying := scriptServer(t, answer("HTTP/1.1 204 No Content\r\n\r\n", true))
	c := newClient(t, Options{})
	sendTo(t, c, closing.url)
	sendTo(t, c, staying.url)
	idle := func() (n int) {
		c.h1.mu.Lock()
		defer c.h1.mu.Unlock()
		for _, l := range c.h1.idle {
			n += len(l)
		}
		return n
	}
	if n := idle(); n != 2 {
		t.Fatalf("%d idle connections, want 2", n)
	}
	time.Sleep(h1CheckIdle + 50*time.Millisecond)
	c.h1.sweepIdle()
	if n := idle(); n != 1 {
		t.Errorf("after the sweep: %d idle connections, want 1 (the open one)", n)
	}
	c.Close()
	if n := idle(); n != 0 {
		t.Errorf("after Close: %d idle connections", n)
	}
}

func TestParseStatus(t *testing.T) {
	t.Parallel()
	for line, want := range map[string]int{
		"HTTP/1.1 200 OK": 200, "HTTP/1.1 204": 204, "HTTP/1.0 404 Not Found": 404, "HTTP/1.1 599 x": 599,
		"HTTP/1.1 20 OK": 0, "HTTP/1.1 2000 OK": 0, "HTTP/2 200 OK": 0, "HTTP/1.1 0x1 x": 0, "HTTP/1.1 099 x": 0, "": 0, "HTTP/1.1": 0,
	} {
		got, _, err := parseStatus([]byte(line))
		if got != want || (want == 0) != (err != nil) {
			t.Errorf("parseStatus(%q) = %d, %v; want %d", line, got, err, want)
		}
	}
}

// TestSendHTTP1Only: with HTTP1Only an endpoint that offers HTTP/2 gets
// HTTP/1.1, on either path; on the HTTP/1.1 path from the first request.
func TestSendHTTP1Only(t *testing.T) {
	t.Parallel()
	for _, netHTTP := range []bool{false, true} {
		t.Run(fmt.Sprint("NetHTTP=", netHTTP), func(t *testing.T) {
			t.Parallel()
			srv, caFile, protos, conns := tlsServer(t, true)
			pool, err := LoadRootCAs(caFile)
			if err != nil {
				t.Fatal(err)
			}
			c := newClient(t, Options{RootCAs: pool, HTTP1Only: true, NetHTTP: netHTTP})
			for i := range 5 {
				if res := sendTo(t, c, srv.URL); !res.OK() {
					t.Fatalf("request %d: %+v %q", i, res, res.ErrorText())
				}
				if p := <-protos; p != "HTTP/1.1" {
					t.Errorf("request %d over %s, want HTTP/1.1", i, p)
				}
			}
			if n := conns.Load(); n != 1 {
				t.Errorf("%d connections, want 1 kept", n)
			}
		})
	}
}

// TestH1Watches: contexts are watched once each while in use and
// forgotten when they end; past maxWatchers a request watches its own.
func TestH1Watches(t *testing.T) {
	t.Parallel()
	srv := scriptServer(t, answer("HTTP/1.1 204 No Content\r\n\r\n", true))
	c := newClient(t, Options{})
	var cancels []context.CancelFunc
	for i := range maxWatchers + 20 {
		ctx, cancel := context.WithCancel(context.Background())
		cancels = append(cancels, cancel)
		for range 2 {
			if res := c.Send(ctx, Request{URL: srv.url, Body: []byte(`{}`)}); !res.OK() {
				t.Fatalf("request under context %d: %+v %q", i, res, res.ErrorText())
			}
		}
	}
	if n := c.h1.nWatches.Load(); n != maxWatchers {
		t.Errorf("%d contexts watched, want the cap %d", n, maxWatchers)
	}
	for _, cancel := range cancels {
		cancel()
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.h1.nWatches.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // AfterFunc runs in its own goroutine
	}
	if n := c.h1.nWatches.Load(); n != 0 {
		t.Errorf("%d contexts still watched after they ended", n)
	}
	n := 0
	c.h1.watches.Range(func(any, any) bool { n++; return true })
	if n != 0 {
		t.Errorf("%d watches left in the map", n)
	}
	// An ended context sends nothing.
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("gone"))
	if res := c.Send(ctx, Request{URL: srv.url, Body: []byte(`{}`)}); res.Err == nil || res.Err.Error() != "gone" {
		t.Errorf("Send under an ended context: %+v", res)
	}
}

// TestH1ResumesTLSSessions: a connection opened again to an HTTPS
// endpoint resumes its TLS session rather than a full handshake.
func TestH1ResumesTLSSessions(t *testing.T) {
	t.Parallel()
	resumed := make(chan bool, 10)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resumed <- r.TLS.DidResume
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	c := newClient(t, Options{RootCAs: pool, HTTP1Only: true})
	for i := range 3 {
		if res := sendTo(t, c, srv.URL); !res.OK() {
			t.Fatalf("request %d: %+v %q", i, res, res.ErrorText())
		}
		c.h1.closeIdle() // the next request opens a new connection
	}
	if first, second, third := <-resumed, <-resumed, <-resumed; first || !second || !third {
		t.Errorf("sessions resumed: %v %v %v, want false true true", first, second, third)
	}
}

// TestResultNewConn: an attempt says whether it opened a connection, on
// both paths: the first to a server, then none while the connection is
// kept; each one to a server that closes after every answer.
func TestResultNewConn(t *testing.T) {
	t.Parallel()
	kept := scriptServer(t, answer("HTTP/1.1 204 No Content\r\n\r\n", true))
	closing := scriptServer(t, answer("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n", false))
	for _, netHTTP := range []bool{false, true} {
		c := newClient(t, Options{NetHTTP: netHTTP})
		for i, want := range []bool{true, false, false} {
			if res := sendTo(t, c, kept.url); !res.OK() || res.NewConn != want {
				t.Errorf("NetHTTP=%v, kept connection, request %d: %+v, want NewConn %v", netHTTP, i, res, want)
			}
		}
		for i := range 3 {
			if res := sendTo(t, c, closing.url); !res.OK() || !res.NewConn {
				t.Errorf("NetHTTP=%v, closing server, request %d: %+v, want NewConn", netHTTP, i, res)
			}
		}
		if res := sendTo(t, c, "http://127.0.0.1:1/"); res.OK() || res.NewConn {
			t.Errorf("NetHTTP=%v, refused connection: %+v, want no NewConn", netHTTP, res)
		}
	}
}
