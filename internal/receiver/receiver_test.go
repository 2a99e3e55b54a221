package receiver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walhook/walhook/internal/sender"
	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/internal/termstyle"
	"github.com/walhook/walhook/internal/testkit"
)

// setup starts a Receiver with opts behind an httptest server.
func setup(t *testing.T, opts Options) (*Receiver, string, *sender.Client) {
	t.Helper()
	rcv := New(opts)
	srv := httptest.NewServer(rcv)
	t.Cleanup(srv.Close)
	c := sender.New(sender.Options{})
	t.Cleanup(c.Close)
	return rcv, srv.URL, c
}

// deliver signs body as event id/type with scheme and secrets and sends it.
func deliver(t *testing.T, c *sender.Client, url, scheme string, secrets []string, id, typ, body string, extra http.Header) sender.Result {
	t.Helper()
	s, err := signing.New(scheme, secrets, signing.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	for k, v := range extra {
		h[k] = v
	}
	s.Sign(h, signing.Message{ID: id, Type: typ, Timestamp: time.Now(), Body: []byte(body)})
	return c.Send(context.Background(), sender.Request{URL: url, Header: h, Body: []byte(body), Timeout: 10 * time.Second})
}

func TestVerifiedDelivery(t *testing.T) {
	t.Parallel()
	secret := signing.GenerateSecret()
	out := &testkit.Buffer{}
	rcv, url, c := setup(t, Options{Secrets: []string{secret}, Out: out})
	body := `{"id": "evt_42", "type": "deal.stage.changed", "timestamp": "2026-01-02T03:04:05Z", "data": {"stage": "won", "amount": "1234.50"}}`
	res := deliver(t, c, url, "", []string{secret}, "evt_42", "deal.stage.changed", body, http.Header{"Webhook-Attempt": {"3"}})
	if !res.OK() || res.StatusCode != http.StatusNoContent {
		t.Fatalf("Send = %+v %q", res, res.ErrorText())
	}
	got := rcv.Received()
	if len(got) != 1 {
		t.Fatalf("received %d, want 1", len(got))
	}
	r := got[0]
	if !r.Verified || r.VerifyErr != nil || r.ID != "evt_42" || r.Type != "deal.stage.changed" || r.Attempt != 3 || r.Status != 204 || string(r.Body) != body {
		t.Errorf("Received = %+v", r)
	}
	printed := out.String()
	for _, want := range []string{"deal.stage.changed", "evt_42", "attempt 3", "signature verified ✓", "→ 204",
		`{"id":"evt_42","type":"deal.stage.changed","timestamp":"2026-01-02T03:04:05Z","data":{"stage":"won","amount":"1234.50"}}`} {
		if !strings.Contains(printed, want) {
			t.Errorf("output lacks %q:\n%s", want, printed)
		}
	}
	if strings.Contains(printed, "\x1b[") {
		t.Errorf("colour codes without Color: %q", printed)
	}
}

func TestSchemes(t *testing.T) {
	t.Parallel()
	for _, scheme := range signing.Schemes {
		t.Run(scheme, func(t *testing.T) {
			t.Parallel()
			oldS, newS := signing.GenerateSecret(), signing.GenerateSecret()
			// The receiver knows only the old secret: the rotation's second
			// signature must carry the delivery.
			rcv, url, c := setup(t, Options{Scheme: scheme, Secrets: []string{oldS}})
			res := deliver(t, c, url, scheme, []string{newS, oldS}, "evt_s", "contact.created", `{"data":{}}`, nil)
			if !res.OK() {
				t.Fatalf("rotation delivery: %+v %q %s", res, res.ErrorText(), res.Response)
			}
			res = deliver(t, c, url, scheme, []string{newS}, "evt_s2", "contact.created", `{"data":{}}`, nil)
			if res.StatusCode != http.StatusUnauthorized || !strings.Contains(string(res.Response), "no signature matches") {
				t.Errorf("unknown secret: %+v %s", res, res.Response)
			}
			got := rcv.Received()
			if len(got) != 2 || !got[0].Verified || got[0].ID != "evt_s" || got[1].Verified || !errors.Is(got[1].VerifyErr, signing.ErrNoMatch) || got[1].Status != 401 {
				t.Errorf("Received = %+v", got)
			}
			if scheme != signing.StandardWebhooks && got[0].Type != "contact.created" {
				t.Errorf("Type from X-Webhook-Event = %q", got[0].Type)
			}
		})
	}
}

func TestRejects(t *testing.T) {
	t.Parallel()
	secret := signing.GenerateSecret()
	out := &testkit.Buffer{}
	rcv, url, c := setup(t, Options{Secrets: []string{secret}, Out: out, Color: true, MaxBodyBytes: 1 << 10})

	// Unsigned.
	res := c.Send(context.Background(), sender.Request{URL: url, Body: []byte(`{"id":"evt_u","type":"x"}`)})
	if res.StatusCode != 401 {
		t.Errorf("unsigned: %+v", res)
	}
	// Signed, then tampered with on the way.
	s, _ := signing.New("", []string{secret}, signing.Options{})
	h := http.Header{}
	s.Sign(h, signing.Message{ID: "evt_t", Timestamp: time.Now(), Body: []byte(`{"amount":1}`)})
	res = c.Send(context.Background(), sender.Request{URL: url, Header: h, Body: []byte(`{"amount":9}`)})
	if res.StatusCode != 401 {
		t.Errorf("tampered: %+v", res)
	}
	// Too old.
	h = http.Header{}
	s.Sign(h, signing.Message{ID: "evt_o", Timestamp: time.Now().Add(-time.Hour), Body: []byte(`{}`)})
	res = c.Send(context.Background(), sender.Request{URL: url, Header: h, Body: []byte(`{}`)})
	if res.StatusCode != 401 || !strings.Contains(string(res.Response), "too old") {
		t.Errorf("old timestamp: %+v %s", res, res.Response)
	}
	// Too large.
	res = deliver(t, c, url, "", []string{secret}, "evt_big", "x", `"`+strings.Repeat("a", 2<<10)+`"`, nil)
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("large body: %+v", res)
	}

	got := rcv.Received()
	want := []struct {
		id  string
		err error
	}{{"evt_u", signing.ErrMissingSignature}, {"evt_t", signing.ErrNoMatch}, {"evt_o", signing.ErrTooOld}, {"evt_big", nil}}
	if len(got) != len(want) {
		t.Fatalf("received %d, want %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i].ID != w.id || got[i].Verified || got[i].VerifyErr == nil || (w.err != nil && !errors.Is(got[i].VerifyErr, w.err)) {
			t.Errorf("received[%d] = id %q verified %v err %v; want %s, %v", i, got[i].ID, got[i].Verified, got[i].VerifyErr, w.id, w.err)
		}
	}
	if printed := out.String(); !strings.Contains(printed, termstyle.Red+"✗ ") || !strings.Contains(printed, "larger than 1024 bytes") {
		t.Errorf("output:\n%s", printed)
	}
}

func TestNoSecret(t *testing.T) {
	t.Parallel()
	out := &testkit.Buffer{}
	rcv, url, c := setup(t, Options{Out: out})
	res := c.Send(context.Background(), sender.Request{URL: url, Header: http.Header{"X-Webhook-Event": {"invoice.paid"}}, Body: []byte(`{"id":7}`)})
	got := rcv.Received()
	if !res.OK() || len(got) != 1 || got[0].Verified || got[0].VerifyErr != nil || got[0].ID != "7" || got[0].Type != "invoice.paid" {
		t.Errorf("res %+v, received %+v", res, got)
	}
	if !strings.Contains(out.String(), "signature not checked") {
		t.Errorf("output: %s", out.String())
	}
	// GET is a notice, not a delivery.
	resp, err := http.Get(url)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET: %v %v", resp, err)
	}
	resp.Body.Close()
	if n := len(rcv.Received()); n != 1 {
		t.Errorf("GET was recorded: %d", n)
	}
}

func TestFailAndWaitFor(t *testing.T) {
	t.Parallel()
	secret := signing.GenerateSecret()
	// Fail each event's first two attempts with 503.
	var mu sync.Mutex
	seen := map[string]int{}
	rcv, url, c := setup(t, Options{Secrets: []string{secret}, Fail: func(r *Received) int {
		mu.Lock()
		defer mu.Unlock()
		seen[r.ID]++
		if seen[r.ID] <= 2 {
			return http.StatusServiceUnavailable
		}
		return 0
	}})

	const events = 10
	var wg sync.WaitGroup
	for i := range events {
		wg.Go(func() {
			id := fmt.Sprintf("evt_%d", i)
			for attempt := 1; ; attempt++ {
				res := deliver(t, c, url, "", []string{secret}, id, "t", `{}`, http.Header{"X-Webhook-Attempt": {strconv.Itoa(attempt)}})
				if res.OK() {
					if attempt != 3 {
						t.Errorf("%s accepted on attempt %d, want 3", id, attempt)
					}
					return
				}
				if res.StatusCode != 503 || attempt > 3 {
					t.Errorf("%s attempt %d: %+v", id, attempt, res)
					return
				}
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rcv.WaitFor(ctx, 3*events); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	accepted := 0
	for _, r := range rcv.Received() {
		if r.Status == 204 {
			accepted++
			if r.Attempt != 3 || !r.Verified {
				t.Errorf("accepted %+v", r)
			}
		}
	}
	if accepted != events {
		t.Errorf("%d accepted, want %d", accepted, events)
	}

	short, cancelShort := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancelShort()
	if err := rcv.WaitFor(short, 3*events+1); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "received 30") {
		t.Errorf("WaitFor beyond what arrives = %v", err)
	}
}

func TestSubscribe(t *testing.T) {
	t.Parallel()
	rcv, url, c := setup(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	ch := rcv.Subscribe(ctx)
	for i := range 3 {
		if res := c.Send(context.Background(), sender.Request{URL: url, Body: fmt.Appendf(nil, `{"id":"evt_%d"}`, i)}); !res.OK() {
			t.Fatal(res.ErrorText())
		}
	}
	for i := range 3 {
		r := <-ch
		if r.ID != fmt.Sprintf("evt_%d", i) {
			t.Errorf("subscription %d got %q", i, r.ID)
		}
	}
	cancel()
	for range ch { // closed once ctx is done
	}
	// Recording goes on without the subscriber.
	if res := c.Send(context.Background(), sender.Request{URL: url, Body: []byte(`{}`)}); !res.OK() {
		t.Fatal(res.ErrorText())
	}
}

func TestFormat(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 2, 15, 4, 5, 123e6, time.UTC)
	long := `{"data":"` + strings.Repeat("é", 300) + `"}`
	s := Format(Received{At: at, Body: []byte(long), Status: 500}, false)
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if len(lines) != 2 || lines[0] != "15:04:05.123  -  -  signature not checked (no secret)  → 500" {
		t.Errorf("summary = %q", lines[0])
	}
	if p := strings.TrimPrefix(lines[1], "  "); utf8Len(p) != maxPayload+1 || !strings.HasSuffix(p, "é…") {
		t.Errorf("payload line = %q", p)
	}
	if p := payload([]byte("not json\n")); p != `"not json\n"` {
		t.Errorf("non-JSON payload = %s", p)
	}
}

func utf8Len(s string) int { return len([]rune(s)) }
