package main

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/walhook/walhook/internal/sender"
	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/internal/testkit"
)

// TestListen runs `walhook listen` and sends it a signed delivery and a
// forged one.
func TestListen(t *testing.T) {
	t.Parallel()
	secret := signing.GenerateSecret()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr := &testkit.Buffer{}, &testkit.Buffer{}
	addrs := make(chan net.Addr, 1)
	code := make(chan int, 1)
	go func() {
		a := testApp(stdout, stderr)
		a.onListening = func(addr net.Addr) { addrs <- addr }
		code <- execute(ctx, []string{"listen", "--port", "0", "--secret", secret, "--color", "never"}, a)
	}()
	var url string
	select {
	case a := <-addrs:
		url = "http://" + a.String() + "/webhooks"
	case c := <-code:
		t.Fatalf("listen exited %d: %s", c, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("listen did not start")
	}

	c := sender.New(sender.Options{})
	defer c.Close()
	s, err := signing.New("", []string{secret}, signing.Options{})
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"id":"evt_listen","type":"contact.created","timestamp":"2026-01-02T03:04:05Z","data":{"email":"ada@example.com"}}`)
	h := http.Header{}
	s.Sign(h, signing.Message{ID: "evt_listen", Type: "contact.created", Timestamp: time.Now(), Body: body})
	if res := c.Send(ctx, sender.Request{URL: url, Header: h, Body: body}); !res.OK() {
		t.Fatalf("signed delivery: %+v %q", res, res.ErrorText())
	}
	forged := http.Header{}
	other, _ := signing.New("", []string{signing.GenerateSecret()}, signing.Options{})
	other.Sign(forged, signing.Message{ID: "evt_forged", Timestamp: time.Now(), Body: body})
	if res := c.Send(ctx, sender.Request{URL: url, Header: forged, Body: body}); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("forged delivery: %+v", res)
	}

	cancel()
	select {
	case c := <-code:
		if c != 0 {
			t.Errorf("listen exited %d after Ctrl-C, want 0", c)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("listen did not stop")
	}
	out := stdout.String()
	for _, want := range []string{"contact.created  evt_listen  signature verified ✓  → 204", `{"id":"evt_listen",`, "evt_forged", "✗ verifying standard-webhooks signature: no signature matches", "→ 401"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(stderr.String(), "receiving webhooks on http://127.0.0.1:") {
		t.Errorf("stderr: %s", stderr.String())
	}
}

func TestListenFlags(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--secret", "whsec_short"}, "standard-webhooks secret"},
		{[]string{"--scheme", "svix"}, "unknown signing scheme"},
		{[]string{"--scheme", "standard-webhooks", "--signature-header", "X-Sig"}, "always uses webhook-signature"},
		{[]string{"--color", "rainbow"}, "--color"},
		{[]string{"--status", "42"}, "not an HTTP status"},
		{[]string{"extra"}, "unexpected argument"},
	}
	for _, c := range cases {
		stderr := &testkit.Buffer{}
		if code := execute(context.Background(), append([]string{"listen"}, c.args...), testApp(&testkit.Buffer{}, stderr)); code != 2 || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("listen %v = %d, stderr %q; want 2 and %q", c.args, code, stderr.String(), c.want)
		}
	}
}
