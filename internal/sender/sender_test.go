package sender

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walhook/walhook/internal/netguard"
	"github.com/walhook/walhook/internal/version"
)

// server starts an httptest server running h and counting new connections.
func server(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func newClient(t *testing.T, opts Options) *Client {
	t.Helper()
	c := New(opts)
	t.Cleanup(c.Close)
	return c
}

func TestSendOK(t *testing.T) {
	t.Parallel()
	got := make(chan *http.Request, 1)
	bodies := make(chan []byte, 1)
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- r
		bodies <- b
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"received":true}`)
	})
	c := newClient(t, Options{})
	h := http.Header{}
	h.Set("webhook-id", "evt_1")
	h.Set("X-Tenant", "acme")
	res := c.Send(context.Background(), Request{URL: srv.URL + "/hooks?x=1", Header: h, Body: []byte(`{"id":"evt_1"}`), Timeout: 5 * time.Second})
	if !res.OK() || res.StatusCode != 202 || res.ErrorText() != "" || res.Err != nil {
		t.Fatalf("Send = %+v (%s), want 202 OK", res, res.ErrorText())
	}
	if string(res.Response) != `{"received":true}` || res.Truncated || res.Duration <= 0 {
		t.Errorf("Response = %q truncated=%v duration=%v", res.Response, res.Truncated, res.Duration)
	}
	r := <-got
	if r.Method != http.MethodPost || r.URL.RequestURI() != "/hooks?x=1" {
		t.Errorf("request = %s %s", r.Method, r.URL)
	}
	for k, want := range map[string]string{"Content-Type": "application/json", "User-Agent": version.UserAgent(), "Webhook-Id": "evt_1", "X-Tenant": "acme"} {
		if v := r.Header.Get(k); v != want {
			t.Errorf("header %s = %q, want %q", k, v, want)
		}
	}
	if b := <-bodies; string(b) != `{"id":"evt_1"}` {
		t.Errorf("body = %q", b)
	}
}

func TestSendStatus(t *testing.T) {
	t.Parallel()
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/500":
			http.Error(w, "database is down", http.StatusInternalServerError)
		case "/410":
			w.WriteHeader(http.StatusGone)
		case "/429":
			w.Header().Set("Retry-After", "120")
			w.WriteHeader(http.StatusTooManyRequests)
		case "/503":
			w.Header().Set("Retry-After", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat))
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/bad-retry-after":
			w.Header().Set("Retry-After", "soon")
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	c := newClient(t, Options{})
	send := func(path string) Result {
		return c.Send(context.Background(), Request{URL: srv.URL + path, Body: []byte(`{}`)})
	}

	res := send("/500")
	if res.OK() || res.StatusCode != 500 || res.Err != nil || res.ErrorText() != "status 500" || string(res.Response) != "database is down\n" {
		t.Errorf("500: %+v %q", res, res.ErrorText())
	}
	if res := send("/410"); res.OK() || res.StatusCode != 410 || res.ErrorText() != "status 410" {
		t.Errorf("410: %+v", res)
	}
	if res := send("/429"); res.RetryAfter != 2*time.Minute {
		t.Errorf("Retry-After 120 = %v, want 2m", res.RetryAfter)
	}
	if res := send("/503"); res.RetryAfter < 58*time.Minute || res.RetryAfter > time.Hour {
		t.Errorf("Retry-After <date in 1h> = %v, want about 1h", res.RetryAfter)
	}
	if res := send("/bad-retry-after"); res.RetryAfter != 0 {
		t.Errorf("Retry-After soon = %v, want 0", res.RetryAfter)
	}
	if res := send("/500"); res.RetryAfter != 0 {
		t.Errorf("no Retry-After = %v, want 0", res.RetryAfter)
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := map[string]time.Duration{
		"":                               0,
		"0":                              0,
		"-5":                             0,
		" 30 ":                           30 * time.Second,
		"99999999999999":                 365 * 24 * time.Hour,
		"Fri, 02 Jan 2026 03:05:05 GMT":  time.Minute,
		"Fri, 02 Jan 2026 03:00:00 GMT":  0, // in the past
		"Friday, 02-Jan-26 03:14:05 GMT": 10 * time.Minute,
		"tomorrow":                       0,
	}
	for v, want := range cases {
		if got := parseRetryAfter(v, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestSendRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	var targetHits atomic.Int64
	target, _ := server(t, func(w http.ResponseWriter, r *http.Request) { targetHits.Add(1) })
	for _, code := range []int{301, 302, 307, 308} {
		srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+"/elsewhere", code)
		})
		res := newClient(t, Options{}).Send(context.Background(), Request{URL: srv.URL, Body: []byte(`{}`)})
		var redirect *RedirectError
		if res.OK() || res.StatusCode != code || !errors.As(res.Err, &redirect) {
			t.Errorf("%d: Send = %+v, want a RedirectError", code, res)
		}
		if want := fmt.Sprintf("redirect (%d) not followed", code); res.ErrorText() != want {
			t.Errorf("%d: ErrorText = %q", code, res.ErrorText())
		}
	}
	if n := targetHits.Load(); n != 0 {
		t.Errorf("the redirect target received %d requests", n)
	}
}

func TestSendTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/body" {
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) }) // runs before srv.Close

	c := newClient(t, Options{})
	res := c.Send(context.Background(), Request{URL: srv.URL + "/headers", Body: []byte(`{}`), Timeout: 300 * time.Millisecond})
	var timeout *TimeoutError
	if !errors.As(res.Err, &timeout) || res.ErrorText() != "timeout after 300ms" || res.StatusCode != 0 {
		t.Errorf("hanging headers: %+v %q, want timeout after 300ms", res, res.ErrorText())
	}
	// A generous bound: the point is that Send gives up, not how fast.
	if res.Duration < 300*time.Millisecond || res.Duration > 10*time.Second {
		t.Errorf("hanging headers: Send took %v with a 300ms timeout", res.Duration)
	}

	// The timeout covers the body: a response that stalls mid-body returns,
	// keeping its status and what arrived, marked truncated.
	res = c.Send(context.Background(), Request{URL: srv.URL + "/body", Body: []byte(`{}`), Timeout: 300 * time.Millisecond})
	if res.StatusCode != 200 || string(res.Response) != "partial" || !res.Truncated || res.Duration > 10*time.Second {
		t.Errorf("hanging body: %+v", res)
	}
}

func TestSendCanceled(t *testing.T) {
	t.Parallel()
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan Result)
	go func() { done <- newClient(t, Options{}).Send(ctx, Request{URL: srv.URL, Body: []byte(`{}`)}) }()
	cancel()
	if res := <-done; res.ErrorText() != "canceled" {
		t.Errorf("canceled Send: %+v %q", res, res.ErrorText())
	}
}

func TestSendConnectionRefused(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	res := newClient(t, Options{}).Send(context.Background(), Request{URL: "http://" + addr + "/", Body: []byte(`{}`)})
	if res.OK() || res.ErrorText() != "connection refused" {
		t.Errorf("closed port: %+v %q", res, res.ErrorText())
	}
	if strings.Contains(res.Err.Error(), addr+"/") {
		t.Errorf("Err repeats the URL: %v", res.Err)
	}
}

func TestSendResponseCap(t *testing.T) {
	t.Parallel()
	big := bytes.Repeat([]byte("x"), 1<<20)
	srv, conns := server(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/medium" {
			w.Write(big[:100<<10]) // over the cap, within the drain: connection reused
			return
		}
		w.Write(big)
	})
	c := newClient(t, Options{})
	res := c.Send(context.Background(), Request{URL: srv.URL, Body: []byte(`{}`)})
	if !res.OK() || len(res.Response) != 64<<10 || !res.Truncated {
		t.Errorf("1 MiB response: ok=%v len=%d truncated=%v", res.OK(), len(res.Response), res.Truncated)
	}
	for range 3 {
		res = c.Send(context.Background(), Request{URL: srv.URL + "/medium", Body: []byte(`{}`)})
		if len(res.Response) != 64<<10 || !res.Truncated {
			t.Errorf("100 KiB response: len=%d truncated=%v", len(res.Response), res.Truncated)
		}
	}
	// One connection for the 1 MiB response (closed: too much to drain),
	// one reused by the three drained 100 KiB responses.
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
	res = newClient(t, Options{MaxResponseBytes: 10}).Send(context.Background(), Request{URL: srv.URL + "/medium", Body: []byte(`{}`)})
	if string(res.Response) != "xxxxxxxxxx" || !res.Truncated {
		t.Errorf("cap 10: %q truncated=%v", res.Response, res.Truncated)
	}
}

func TestSendKeepAlive(t *testing.T) {
	t.Parallel()
	srv, conns := server(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	})
	c := newClient(t, Options{})
	for i := range 100 {
		if res := c.Send(context.Background(), Request{URL: srv.URL, Body: []byte(`{"n":1}`)}); !res.OK() {
			t.Fatalf("send %d: %+v", i, res)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("100 sequential sends opened %d connections, want 1", n)
	}
}

func TestSendGuard(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

	cases := []struct {
		guard *netguard.Guard
		url   string
		want  string // "" means delivered
	}{
		{&netguard.Guard{}, srv.URL, "plain http"},                                       // refused by CheckURL
		{&netguard.Guard{AllowHTTP: true}, srv.URL, "loopback"},                          // literal IP, refused by CheckURL
		{&netguard.Guard{AllowHTTP: true}, "http://localhost:" + port + "/", "loopback"}, // refused at connect time
		{&netguard.Guard{}, "https://localhost:" + port + "/", "loopback"},               // https too
		{&netguard.Guard{}, "https://10.0.0.1/", "private address (10.0.0.0/8)"},
		{&netguard.Guard{}, "https://169.254.169.254/", "cloud metadata"},
		{&netguard.Guard{AllowHTTP: true, Allow: loopback}, srv.URL, ""},
		{&netguard.Guard{AllowHTTP: true, Allow: loopback}, "http://localhost:" + port + "/", ""},
		{nil, srv.URL, ""},
	}
	delivered := int64(0)
	for _, c := range cases {
		res := newClient(t, Options{Guard: c.guard}).Send(context.Background(), Request{URL: c.url, Body: []byte(`{}`), Timeout: 5 * time.Second})
		var refused *netguard.RefusedError
		switch {
		case c.want == "" && !res.OK():
			t.Errorf("%s with %+v: %+v %q, want delivered", c.url, c.guard, res, res.ErrorText())
		case c.want != "" && (!errors.As(res.Err, &refused) || !strings.Contains(res.ErrorText(), c.want)):
			t.Errorf("%s with %+v: %+v %q, want refused: %s", c.url, c.guard, res, res.ErrorText(), c.want)
		}
		if c.want == "" {
			delivered++
		}
	}
	if n := hits.Load(); n != delivered {
		t.Errorf("server received %d requests, want %d (refused ones must not arrive)", n, delivered)
	}
}

func TestErrorTextTruncates(t *testing.T) {
	t.Parallel()
	r := Result{Err: errors.New(strings.Repeat("é", 300))}
	if txt := r.ErrorText(); len(txt) > maxErrorText+len("…") || !strings.HasSuffix(txt, "…") || !strings.HasPrefix(txt, "éé") {
		t.Errorf("ErrorText = %q", txt)
	}
}

func BenchmarkSend(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	c := New(Options{})
	defer c.Close()
	body := bytes.Repeat([]byte("x"), 300)
	h := http.Header{"Webhook-Id": {"evt_1"}}
	b.Run("sequential", func(b *testing.B) {
		for b.Loop() {
			if res := c.Send(context.Background(), Request{URL: srv.URL, Header: h, Body: body}); !res.OK() {
				b.Fatal(res.ErrorText())
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	})
	b.Run("parallel", func(b *testing.B) {
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if res := c.Send(context.Background(), Request{URL: srv.URL, Header: h, Body: body}); !res.OK() {
					b.Error(res.ErrorText())
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	})
}

func TestSendURLCredentialsAsBasicAuth(t *testing.T) {
	t.Parallel()
	got := make(chan *http.Request, 2)
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		got <- r
		w.WriteHeader(http.StatusNoContent)
	})
	c := newClient(t, Options{})
	u := strings.Replace(srv.URL, "http://", "http://hook:s3cret@", 1)
	if res := c.Send(context.Background(), Request{URL: u, Body: []byte(`{}`)}); !res.OK() {
		t.Fatalf("Send = %+v", res)
	}
	if user, pass, ok := (<-got).BasicAuth(); !ok || user != "hook" || pass != "s3cret" {
		t.Errorf("basic auth = %q %q %v", user, pass, ok)
	}
	// An Authorization header given by the caller wins.
	h := http.Header{"Authorization": {"Bearer t0ken"}}
	if res := c.Send(context.Background(), Request{URL: u, Header: h, Body: []byte(`{}`)}); !res.OK() {
		t.Fatalf("Send = %+v", res)
	}
	if a := (<-got).Header.Get("Authorization"); a != "Bearer t0ken" {
		t.Errorf("Authorization = %q", a)
	}
}

// countingConn counts the writes made on a connection.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// TestSendOneWritePerRequest checks that a request's headers and body
// leave in one write system call on a kept-alive connection, on both
// paths (net/http flushes the headers apart, a second write, for a body it
// does not know to be in memory), and that the parsed-URL cache serves
// repeated URLs.
func TestSendOneWritePerRequest(t *testing.T) {
	t.Parallel()
	for _, netHTTP := range []bool{false, true} {
		t.Run(fmt.Sprint("NetHTTP=", netHTTP), func(t *testing.T) {
			t.Parallel()
			srv, conns := server(t, func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.WriteHeader(http.StatusNoContent)
			})
			c := newClient(t, Options{NetHTTP: netHTTP})
			var writes atomic.Int64
			if netHTTP {
				tr := c.closers[0]
				dial := tr.DialContext
				tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
					conn, err := dial(ctx, network, addr)
					if err != nil {
						return nil, err
					}
					return countingConn{Conn: conn, writes: &writes}, nil
				}
			} else {
				dial := c.h1.dial
				c.h1.dial = func(ctx context.Context, d *net.Dialer, addr string) (net.Conn, error) {
					conn, err := dial(ctx, d, addr)
					if err != nil {
						return nil, err
					}
					return countingConn{Conn: conn, writes: &writes}, nil
				}
			}
			const n = 20
			body := bytes.Repeat([]byte("x"), 2000)
			for i := range n {
				h := http.Header{"Webhook-Id": {fmt.Sprint("evt_", i)}}
				if res := c.Send(context.Background(), Request{URL: srv.URL + "/hook", Header: h, Body: body, Timeout: 5 * time.Second}); !res.OK() {
					t.Fatalf("Send = %+v", res)
				}
			}
			if got := writes.Load(); got != n {
				t.Errorf("%d requests took %d writes, want one each", n, got)
			}
			if conns.Load() != 1 {
				t.Errorf("%d connections, want 1 kept alive", conns.Load())
			}
			if got := c.nTargets.Load(); got != 1 {
				t.Errorf("URL cache holds %d entries for one URL", got)
			}
		})
	}
}
