package signing

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// The published Standard Webhooks test vector.
const (
	vectorSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTimestamp = 1614265330
	vectorBody      = `{"test": 2432232314}`
	vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func sign(t *testing.T, scheme string, secrets []string, opts Options, m Message) http.Header {
	t.Helper()
	s, err := New(scheme, secrets, opts)
	if err != nil {
		t.Fatalf("New(%q): %v", scheme, err)
	}
	h := http.Header{}
	s.Sign(h, m)
	return h
}

func TestStandardWebhooksVector(t *testing.T) {
	t.Parallel()
	m := Message{ID: vectorID, Type: "test", Timestamp: time.Unix(vectorTimestamp, 0), Body: []byte(vectorBody)}
	h := sign(t, "", []string{vectorSecret}, Options{}, m)
	if got := h.Get("webhook-signature"); got != vectorSignature {
		t.Errorf("webhook-signature = %q, want %q", got, vectorSignature)
	}
	if got := h.Get("webhook-id"); got != vectorID {
		t.Errorf("webhook-id = %q", got)
	}
	if got := h.Get("webhook-timestamp"); got != "1614265330" {
		t.Errorf("webhook-timestamp = %q", got)
	}
	if err := Verify("", []string{vectorSecret}, h, []byte(vectorBody), time.Unix(vectorTimestamp+10, 0), 0); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

func TestGitHubVector(t *testing.T) {
	t.Parallel()
	const secret, body = "It's a Secret to Everybody", "Hello, World!"
	const want = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	m := Message{ID: "evt_1", Type: "contact.created", Timestamp: time.Now(), Body: []byte(body)}

	h := sign(t, GitHub, []string{secret}, Options{}, m)
	if got := h.Get("X-Hub-Signature-256"); got != "sha256="+want {
		t.Errorf("X-Hub-Signature-256 = %q, want sha256=%s", got, want)
	}
	if h.Get("X-Webhook-Id") != "evt_1" || h.Get("X-Webhook-Event") != "contact.created" {
		t.Errorf("id/event headers = %v", h)
	}

	h = sign(t, HMACSHA256, []string{secret}, Options{}, m)
	if got := h.Get("X-Webhook-Signature"); got != want {
		t.Errorf("X-Webhook-Signature = %q, want %s", got, want)
	}
	if h.Get("X-Webhook-Timestamp") == "" {
		t.Error("hmac-sha256 sets no X-Webhook-Timestamp")
	}
}

// TestOfficialLibrary checks our signatures with the official Go library,
// and theirs with our Verify, including two secrets during a rotation.
func TestOfficialLibrary(t *testing.T) {
	t.Parallel()
	oldSecret, newSecret := vectorSecret, GenerateSecret()
	m := Message{ID: "evt_0123", Type: "deal.stage.changed", Timestamp: time.Now(), Body: []byte(`{"id":"evt_0123","data":{"amount":"12.50"}}`)}
	h := sign(t, StandardWebhooks, []string{newSecret, oldSecret}, Options{}, m)
	if n := len(strings.Fields(h.Get("webhook-signature"))); n != 2 {
		t.Fatalf("webhook-signature has %d signatures during rotation, want 2: %q", n, h.Get("webhook-signature"))
	}
	for _, secret := range []string{oldSecret, newSecret} {
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			t.Fatal(err)
		}
		if err := wh.Verify(m.Body, h); err != nil {
			t.Errorf("official library refuses our signature: %v", err)
		}
		theirs, err := wh.Sign(m.ID, m.Timestamp, m.Body)
		if err != nil {
			t.Fatal(err)
		}
		th := http.Header{}
		th.Set("webhook-id", m.ID)
		th.Set("webhook-timestamp", h.Get("webhook-timestamp"))
		th.Set("webhook-signature", theirs)
		if err := Verify("", []string{newSecret, oldSecret}, th, m.Body, time.Now(), 0); err != nil {
			t.Errorf("Verify refuses the official library's signature: %v", err)
		}
	}
	other, _ := standardwebhooks.NewWebhook(GenerateSecret())
	if err := other.Verify(m.Body, h); err == nil {
		t.Error("official library accepted a signature with an unrelated secret")
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	m := Message{ID: "evt_abc", Type: "invoice.paid", Timestamp: now, Body: []byte(`{"amount":"99.95"}`)}
	for _, scheme := range Schemes {
		for _, header := range []string{"", "X-Custom-Sig"} {
			if scheme == StandardWebhooks && header != "" {
				continue
			}
			t.Run(scheme+"/"+header, func(t *testing.T) {
				t.Parallel()
				oldS, newS := GenerateSecret(), GenerateSecret()
				opts := Options{SignatureHeader: header}
				h := sign(t, scheme, []string{newS, oldS}, opts, m)
				if header != "" && h.Get(header) == "" {
					t.Fatalf("no %s header: %v", header, h)
				}
				if id := h.Get("webhook-id") + h.Get("X-Webhook-Id"); id != m.ID {
					t.Errorf("id header = %q, want %q", id, m.ID)
				}
				verify := func(secrets []string, h http.Header, body []byte, at time.Time) error {
					return VerifyWith(scheme, secrets, opts, h, body, at, time.Minute)
				}
				for _, secrets := range [][]string{{newS}, {oldS}, {GenerateSecret(), oldS}} {
					if err := verify(secrets, h, m.Body, now.Add(30*time.Second)); err != nil {
						t.Errorf("Verify with one of the signing secrets: %v", err)
					}
				}
				if err := verify([]string{GenerateSecret()}, h, m.Body, now); !errors.Is(err, ErrNoMatch) {
					t.Errorf("Verify with another secret = %v, want ErrNoMatch", err)
				}
				tampered := append([]byte(nil), m.Body...)
				tampered[len(tampered)-3] = '6'
				if err := verify([]string{newS}, h, tampered, now); !errors.Is(err, ErrNoMatch) {
					t.Errorf("Verify of a tampered body = %v, want ErrNoMatch", err)
				}
				if err := verify([]string{newS}, http.Header{}, m.Body, now); !errors.Is(err, ErrMissingSignature) {
					t.Errorf("Verify without headers = %v, want ErrMissingSignature", err)
				}
			})
		}
	}
}

func TestTimestamp(t *testing.T) {
	t.Parallel()
	sent := time.Unix(1_700_000_000, 0)
	m := Message{ID: "evt_t", Type: "x", Timestamp: sent, Body: []byte(`{}`)}
	secret := GenerateSecret()
	for _, scheme := range []string{StandardWebhooks, Stripe} {
		h := sign(t, scheme, []string{secret}, Options{}, m)
		cases := []struct {
			now       time.Time
			tolerance time.Duration
			want      error
		}{
			{sent.Add(4 * time.Minute), 0, nil},
			{sent.Add(6 * time.Minute), 0, ErrTooOld},
			{sent.Add(-6 * time.Minute), 0, ErrTooNew},
			{sent.Add(-4 * time.Minute), 0, nil},
			{sent.Add(2 * time.Minute), time.Minute, ErrTooOld},
			{sent.Add(24 * time.Hour), -1, nil},
		}
		for _, c := range cases {
			err := Verify(scheme, []string{secret}, h, m.Body, c.now, c.tolerance)
			if !errors.Is(err, c.want) || (c.want == nil && err != nil) {
				t.Errorf("%s: Verify at sent%+v tolerance %v = %v, want %v", scheme, c.now.Sub(sent), c.tolerance, err, c.want)
			}
		}
		// A timestamp moved forward to pass the tolerance breaks the signature.
		th := h.Clone()
		later := "1700000600"
		if scheme == StandardWebhooks {
			th.Set("webhook-timestamp", later)
		} else {
			th.Set("X-Signature", strings.Replace(h.Get("X-Signature"), "t=1700000000", "t="+later, 1))
		}
		if err := Verify(scheme, []string{secret}, th, m.Body, sent.Add(10*time.Minute), 0); !errors.Is(err, ErrNoMatch) {
			t.Errorf("%s: Verify with a tampered timestamp = %v, want ErrNoMatch", scheme, err)
		}
	}
}

func TestWireFormats(t *testing.T) {
	t.Parallel()
	m := Message{ID: "evt_w", Type: "deal.won", Timestamp: time.Unix(1614265330, 0), Body: []byte(`{}`)}
	a, b := "secret-a", "secret-b"

	h := sign(t, Stripe, []string{a, b}, Options{}, m)
	parts := strings.Split(h.Get("X-Signature"), ",")
	if len(parts) != 3 || parts[0] != "t=1614265330" || !strings.HasPrefix(parts[1], "v1=") || !strings.HasPrefix(parts[2], "v1=") || len(parts[1]) != 3+64 {
		t.Errorf("X-Signature = %q, want t=1614265330,v1=<hex>,v1=<hex>", h.Get("X-Signature"))
	}
	if h.Get("X-Webhook-Event") != "deal.won" {
		t.Errorf("X-Webhook-Event = %q", h.Get("X-Webhook-Event"))
	}

	for _, scheme := range []string{GitHub, HMACSHA256} {
		h := sign(t, scheme, []string{a, b}, Options{}, m)
		single := sign(t, scheme, []string{a}, Options{}, m)
		header := map[string]string{GitHub: "X-Hub-Signature-256", HMACSHA256: "X-Webhook-Signature"}[scheme]
		lines := h.Values(header)
		if len(lines) != 2 || lines[0] != single.Get(header) {
			t.Errorf("%s: %s lines = %q, want the newest secret's signature first, then the older", scheme, header, lines)
		}
		// A receiver that joins repeated headers with commas still verifies.
		joined := http.Header{header: {strings.Join(lines, ", ")}}
		if err := Verify(scheme, []string{b}, joined, m.Body, time.Now(), 0); err != nil {
			t.Errorf("%s: Verify of comma-joined signatures: %v", scheme, err)
		}
	}
}

func TestParseSecret(t *testing.T) {
	t.Parallel()
	key, err := ParseSecret(StandardWebhooks, vectorSecret)
	if err != nil || len(key) != 24 {
		t.Fatalf("ParseSecret(vector) = %d bytes, %v", len(key), err)
	}
	if k2, err := ParseSecret(StandardWebhooks, strings.TrimPrefix(vectorSecret, "whsec_")); err != nil || string(k2) != string(key) {
		t.Errorf("ParseSecret without prefix = %v", err)
	}
	for _, bad := range []string{"", "whsec_", "whsec_not base64!", "whsec_c2hvcnQ=", "whsec_" + strings.Repeat("QUFB", 22)} {
		if _, err := ParseSecret(StandardWebhooks, bad); err == nil {
			t.Errorf("ParseSecret(%q) accepted", bad)
		} else if bad != "" && len(bad) > 8 && strings.Contains(err.Error(), bad[6:]) {
			t.Errorf("error reveals the secret: %v", err)
		}
	}
	gen := GenerateSecret()
	if !strings.HasPrefix(gen, "whsec_") || gen == GenerateSecret() {
		t.Errorf("GenerateSecret = %q", gen)
	}
	for _, scheme := range Schemes {
		if _, err := ParseSecret(scheme, gen); err != nil {
			t.Errorf("ParseSecret(%s, generated): %v", scheme, err)
		}
	}
	if k, err := ParseSecret(GitHub, gen); err != nil || string(k) != gen {
		t.Errorf("github key = %q, %v; want the secret's bytes as written", k, err)
	}
	if _, err := ParseSecret(Stripe, ""); err == nil {
		t.Error("empty stripe secret accepted")
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		scheme  string
		secrets []string
		opts    Options
		want    string
	}{
		{"svix", []string{"x"}, Options{}, "unknown signing scheme"},
		{StandardWebhooks, nil, Options{}, "no secret"},
		{StandardWebhooks, []string{vectorSecret, "whsec_bad"}, Options{}, "secret 2 of 2"},
		{StandardWebhooks, []string{vectorSecret}, Options{SignatureHeader: "X-Sig"}, "always uses webhook-signature"},
	}
	for _, c := range cases {
		_, err := New(c.scheme, c.secrets, c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%q, %d secrets, %+v) = %v, want an error containing %q", c.scheme, len(c.secrets), c.opts, err, c.want)
		}
	}
}

func BenchmarkSign(b *testing.B) {
	body := []byte(`{"id":"evt_0123456789abcdefghjkmnpq","type":"deal.stage.changed","timestamp":"2026-01-02T03:04:05Z","data":{"id":42,"stage":"won","amount":"1234.50","owner":"ada@example.com"}}`)
	for _, scheme := range Schemes {
		b.Run(scheme, func(b *testing.B) {
			s, err := New(scheme, []string{GenerateSecret()}, Options{})
			if err != nil {
				b.Fatal(err)
			}
			m := Message{ID: "evt_0123456789abcdefghjkmnpq", Type: "deal.stage.changed", Timestamp: time.Now(), Body: body}
			b.ReportAllocs()
			for b.Loop() {
				s.Sign(http.Header{}, m)
			}
		})
	}
}

// TestSignSetsLikeHeaderSet checks that Sign stores its headers as
// http.Header.Set would (canonical names, earlier values replaced, a custom
// header name written in any case), and that adding to one afterwards
// leaves the others as they were.
func TestSignSetsLikeHeaderSet(t *testing.T) {
	t.Parallel()
	m := Message{ID: "evt_set", Type: "deal.won", Timestamp: time.Unix(1614265330, 0), Body: []byte(`{"a":1}`)}
	for _, scheme := range Schemes {
		opts := Options{}
		if scheme != StandardWebhooks {
			opts.SignatureHeader = "x-my-signature"
		}
		s, err := New(scheme, []string{GenerateSecret()}, opts)
		if err != nil {
			t.Fatal(err)
		}
		h := http.Header{}
		if scheme == StandardWebhooks {
			h.Set(HeaderWebhookID, "stale")
		} else {
			h.Set(HeaderID, "stale")
			h.Set("X-My-Signature", "stale")
		}
		s.Sign(h, m)
		want := http.Header{}
		for k, vs := range h {
			for _, v := range vs {
				want.Add(k, v) // Add canonicalizes: a key Sign wrote otherwise would split in two
			}
		}
		if len(want) != len(h) {
			t.Errorf("%s: header names not canonical: %v", scheme, h)
		}
		for k, vs := range h {
			if len(vs) != 1 || vs[0] == "stale" {
				t.Errorf("%s: %s = %q, want one fresh value", scheme, k, vs)
			}
		}
		id := h.Get(HeaderID) + h.Get(HeaderWebhookID)
		for k := range h {
			h.Add(k, "extra")
		}
		if got := h.Get(HeaderID) + h.Get(HeaderWebhookID); got != id || id != m.ID {
			t.Errorf("%s: id header %q after adding to every header, want %q", scheme, got, m.ID)
		}
	}
}
