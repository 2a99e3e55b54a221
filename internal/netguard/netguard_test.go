package netguard

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestBlocked(t *testing.T) {
	t.Parallel()
	cases := []struct {
		ip     string
		reason string // "" means allowed
	}{
		{"127.0.0.1", "loopback address (127.0.0.0/8)"},
		{"127.1.2.3", "loopback"},
		{"::1", "loopback address (::1/128)"},
		{"10.0.0.1", "private address (10.0.0.0/8)"},
		{"172.16.5.4", "private address (172.16.0.0/12)"},
		{"172.31.255.255", "private"},
		{"192.168.1.1", "private address (192.168.0.0/16)"},
		{"fd12:3456::1", "unique local"},
		{"169.254.169.254", "cloud metadata address"},
		{"fd00:ec2::254", "cloud metadata address"},
		{"169.254.1.1", "link-local address"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"100.64.0.1", "CGNAT"},
		{"100.127.255.255", "CGNAT"},
		{"0.0.0.0", "unspecified"},
		{"0.1.2.3", "unspecified"},
		{"::", "unspecified"},
		{"224.0.0.1", "multicast"},
		{"ff02::1", "multicast"},
		{"255.255.255.255", "broadcast"},
		{"240.0.0.1", "reserved"},
		{"192.0.2.10", "documentation"},
		{"2001:db8::1", "documentation"},
		{"::ffff:127.0.0.1", "loopback"},
		{"::ffff:169.254.169.254", "cloud metadata"},
		{"::ffff:10.1.2.3", "private"},
		{"64:ff9b::a9fe:a9fe", "NAT64 form of 169.254.169.254, a cloud metadata"},
		{"2002:7f00:1::", "6to4 form of 127.0.0.1"},
		// Public addresses pass.
		{"93.184.215.14", ""},
		{"172.32.0.1", ""},
		{"100.128.0.1", ""},
		{"8.8.8.8", ""},
		{"2606:4700:4700::1111", ""},
		{"::ffff:8.8.8.8", ""},
		{"64:ff9b::808:808", ""},
	}
	for _, c := range cases {
		reason, blocked := Blocked(netip.MustParseAddr(c.ip))
		switch {
		case c.reason == "" && blocked:
			t.Errorf("Blocked(%s) = %q, want allowed", c.ip, reason)
		case c.reason != "" && (!blocked || !strings.Contains(reason, c.reason)):
			t.Errorf("Blocked(%s) = %q, %v; want blocked as %q", c.ip, reason, blocked, c.reason)
		}
	}
	if _, blocked := Blocked(netip.Addr{}); !blocked {
		t.Error("Blocked(invalid) allowed")
	}
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	strict := &Guard{}
	open := &Guard{AllowHTTP: true, Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.1.0.0/16")}}
	cases := []struct {
		g    *Guard
		url  string
		want string // "" means accepted
	}{
		{strict, "https://hooks.example.com/in", ""},
		{strict, "https://hooks.example.com:8443/in?x=1", ""},
		{strict, "https://localhost/in", ""}, // a hostname: checked when connecting
		{strict, "https://93.184.215.14/in", ""},
		{strict, "http://hooks.example.com/in", "plain http"},
		{strict, "ftp://hooks.example.com/in", "scheme must be https"},
		{strict, "https:///in", "no host"},
		{strict, "://bad", "parsing endpoint url"},
		{strict, "https://127.0.0.1/in", "loopback address"},
		{strict, "https://[::1]:9000/in", "loopback address"},
		{strict, "https://10.0.0.1/in", "private address (10.0.0.0/8)"},
		{strict, "https://169.254.169.254/latest/meta-data/", "cloud metadata"},
		{strict, "https://[::ffff:169.254.169.254]/", "cloud metadata"},
		{strict, "https://100.64.1.1/", "CGNAT"},
		{open, "http://127.0.0.1:9000/in", ""},
		{open, "https://10.1.2.3/in", ""},
		{open, "https://10.2.0.1/in", "private address"},
		{open, "http://93.184.215.14/in", "plain http outside admin.allow_networks"},
		{open, "http://hooks.example.com/in", ""}, // checked when connecting
	}
	for _, c := range cases {
		err := c.g.CheckURL(c.url)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("CheckURL(%q) = %v, want accepted", c.url, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("CheckURL(%q) = %v, want an error containing %q", c.url, err, c.want)
		}
	}
	err := strict.CheckURL("https://10.0.0.1/")
	var refused *RefusedError
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), "admin.allow_networks") {
		t.Errorf("CheckURL error %v should be a *RefusedError naming admin.allow_networks", err)
	}
	if err := (*Guard)(nil).CheckURL("http://127.0.0.1/"); err != nil {
		t.Errorf("nil Guard refused: %v", err)
	}
}

// client returns an HTTP client whose dialer is guarded by g.
func client(g *Guard) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, Control: g.Control}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}, Timeout: 10 * time.Second}
}

func TestDialLoopback(t *testing.T) {
	t.Parallel()
	hits := make(chan struct{}, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits <- struct{}{} }))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	var refused *RefusedError
	_, err := client(&Guard{}).Post(srv.URL, "application/json", nil)
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("POST %s with the default guard = %v, want refused as loopback", srv.URL, err)
	}
	// DNS: the hostname passes CheckURL but its address is refused on connect.
	_, err = client(&Guard{}).Post("http://localhost:"+port+"/", "application/json", nil)
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("POST via localhost = %v, want refused as loopback at connect time", err)
	}
	if len(hits) != 0 {
		t.Fatalf("the server received %d requests through a refusing guard", len(hits))
	}

	allow := &Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}}
	for _, u := range []string{srv.URL, "http://localhost:" + port + "/"} {
		resp, err := client(allow).Post(u, "application/json", nil)
		if err != nil {
			t.Fatalf("POST %s with 127.0.0.0/8 allowed: %v", u, err)
		}
		resp.Body.Close()
	}
	if len(hits) != 2 {
		t.Errorf("server received %d requests, want 2", len(hits))
	}
}

// TestDialRefusedBeforeConnect dials non-loopback addresses: Control must
// refuse them before any packet is sent (the dial fails at once, with the
// guard's error, not a timeout or a network error).
func TestDialRefusedBeforeConnect(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"10.0.0.1:443", "169.254.169.254:80", "[fd00:ec2::254]:80", "[::ffff:10.0.0.1]:443"} {
		d := &net.Dialer{Timeout: 5 * time.Second, Control: (&Guard{}).Control}
		conn, err := d.Dial("tcp", addr)
		if conn != nil {
			conn.Close()
		}
		var refused *RefusedError
		if !errors.As(err, &refused) {
			t.Errorf("Dial(%s) = %v, want a *RefusedError", addr, err)
		}
	}
}

func TestPlaintextControl(t *testing.T) {
	t.Parallel()
	g := &Guard{AllowHTTP: true, Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	if err := g.PlaintextControl("tcp4", "127.0.0.1:80", nil); err != nil {
		t.Errorf("plaintext to an allowed network refused: %v", err)
	}
	if err := g.PlaintextControl("tcp4", "93.184.215.14:80", nil); err == nil || !strings.Contains(err.Error(), "plain http") {
		t.Errorf("plaintext to a public address = %v, want refused", err)
	}
	if err := g.Control("tcp4", "93.184.215.14:443", nil); err != nil {
		t.Errorf("https to a public address refused: %v", err)
	}
}
