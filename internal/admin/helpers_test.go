package admin_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/walhook/walhook/internal/admin"
	"github.com/walhook/walhook/internal/metrics"
	"github.com/walhook/walhook/internal/netguard"
	"github.com/walhook/walhook/internal/rules"
	"github.com/walhook/walhook/internal/sender"
	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/internal/store"
	"github.com/walhook/walhook/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// The tokens every test server accepts.
const (
	tokenA = "token-a-0123456789abcdef"
	tokenB = "token-b-fedcba9876543210"
)

// catalogue is the event catalogue of the test servers.
var catalogue = []rules.EventInfo{
	{Name: "contact.created", Description: "A contact was added", Table: "public.contacts", Ops: []string{"insert"}},
	{Name: "contact.updated", Table: "public.contacts", Ops: []string{"update"}},
	{Name: "deal.stage.changed", Table: "public.deals", Ops: []string{"update"}},
}

// configEndpoint is the HCL endpoint every test server lists.
var configEndpoint = admin.ConfigEndpoint{
	ID: "cfg:crm", Name: "crm", URL: "https://crm.example.com/hooks", Events: []string{"contact.*"},
	Signing: "standard-webhooks", Ordering: "key", HeaderNames: []string{"Authorization"},
}

// loopbackGuard lets API webhooks reach plain-http test servers on
// 127.0.0.0/8 (the allow-list at work); strictGuard is the default.
var (
	loopbackGuard = &netguard.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, AllowHTTP: true}
	strictGuard   = &netguard.Guard{}
)

// apiEnv is an admin API over real HTTP on a real store.
type apiEnv struct {
	t       *testing.T
	db      *testenv.DB
	store   *store.Store
	srv     *httptest.Server
	metrics *metrics.Metrics
}

// setup starts the admin API on a fresh database; change adjusts the
// options first.
func setup(t *testing.T, change func(*admin.Options)) *apiEnv {
	t.Helper()
	db := testenv.NewEmptyDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, db.Pool, "walhook")
	if err != nil {
		t.Fatalf("opening store: %v", err)
	}
	m := metrics.New(prometheus.NewRegistry())
	m.WatchQueue(st.Stats)
	m.WatchHealth(st.AllHealth)
	e := &apiEnv{t: t, db: db, store: st, metrics: m}
	opts := admin.Options{
		Store:           st,
		Tokens:          []string{tokenA, tokenB},
		Events:          catalogue,
		ConfigEndpoints: []admin.ConfigEndpoint{configEndpoint},
		Guard:           loopbackGuard,
		Metrics:         m.Handler(),
		Logger:          zerolog.New(io.Discard),
		Tester:          newTestTester(st, loopbackGuard),
	}
	guard := opts.Guard
	if change != nil {
		change(&opts)
	}
	// The tester sends through the guard the options end up with; change
	// may also set Tester to nil.
	if opts.Guard != guard {
		opts.Tester = newTestTester(st, opts.Guard)
	}
	e.srv = httptest.NewServer(admin.New(opts))
	t.Cleanup(e.srv.Close)
	return e
}

// response is one API answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into v.
func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
}

// errorBody is the API's error format.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
	} `json:"error"`
}

func (r response) apiError(t *testing.T) errorBody {
	t.Helper()
	var e errorBody
	r.json(t, &e)
	if e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("error body without code or message: %s", r.body)
	}
	return e
}

// call sends a request with token (none when ""); body is JSON-encoded
// unless it is a string or nil.
func (e *apiEnv) call(method, path string, body any, token string) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return e.send(req)
}

func (e *apiEnv) send(req *http.Request) response {
	e.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: raw}
}

// do is call with tokenA.
func (e *apiEnv) do(method, path string, body any) response {
	e.t.Helper()
	return e.call(method, path, body, tokenA)
}

// expect checks the status, failing with the body.
func (e *apiEnv) expect(r response, status int) response {
	e.t.Helper()
	if r.status != status {
		e.t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	return r
}

// webhook is a webhook as the API returns it.
type webhook struct {
	ID          string            `json:"id"`
	Source      string            `json:"source"`
	Name        string            `json:"name"`
	URL         string            `json:"url"`
	Description string            `json:"description"`
	Events      []string          `json:"events"`
	Tenant      string            `json:"tenant"`
	Active      bool              `json:"active"`
	Headers     map[string]string `json:"headers"`
	HeaderNames []string          `json:"header_names"`
	Signing     string            `json:"signing"`
	RateLimit   string            `json:"rate_limit"`
	Batch       *batchJSON        `json:"batch"`
	Secret      string            `json:"secret"`
	Secrets     []struct {
		Hint      string     `json:"hint"`
		ExpiresAt *time.Time `json:"expires_at"`
	} `json:"secrets"`
	Health struct {
		Disabled            bool   `json:"disabled"`
		DisabledReason      string `json:"disabled_reason"`
		ConsecutiveFailures int    `json:"consecutive_failures"`
	} `json:"health"`
}

// batchJSON is a webhook's batch as the API shows it.
type batchJSON struct {
	MaxEvents int    `json:"max_events"`
	MaxBytes  int    `json:"max_bytes"`
	MaxWait   string `json:"max_wait"`
}

// create registers a webhook and returns it.
func (e *apiEnv) create(body map[string]any) webhook {
	e.t.Helper()
	var w webhook
	e.expect(e.do("POST", "/v1/webhooks", body), http.StatusCreated).json(e.t, &w)
	return w
}

// receiverServer is a plain-http endpoint on 127.0.0.1 that records
// requests and answers status.
type receiverServer struct {
	*httptest.Server
	got chan recorded
}

type recorded struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, status int, answer string) *receiverServer {
	t.Helper()
	r := &receiverServer{got: make(chan recorded, 16)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.got <- recorded{header: req.Header.Clone(), body: body}
		w.WriteHeader(status)
		io.WriteString(w, answer)
	}))
	t.Cleanup(r.Close)
	return r
}

// next waits for the next request.
func (r *receiverServer) next(t *testing.T) recorded {
	t.Helper()
	select {
	case rec := <-r.got:
		return rec
	case <-time.After(10 * time.Second):
		t.Fatal("no request reached the receiver within 10s")
	}
	return recorded{}
}

// testTester is a small real Tester: it signs a webhook.test event with
// the webhook's active secrets (internal/signing) and posts it through the
// guarded sender, as the relay does.
type testTester struct {
	store  *store.Store
	client *sender.Client
}

func newTestTester(st *store.Store, guard *netguard.Guard) *testTester {
	return &testTester{store: st, client: sender.New(sender.Options{Guard: guard})}
}

func (tt *testTester) SendTest(ctx context.Context, id string) (store.Attempt, error) {
	w, err := tt.store.GetWebhook(ctx, id)
	if err != nil {
		return store.Attempt{}, err
	}
	now := time.Now()
	var secrets []string
	for _, s := range w.Secrets {
		if s.ExpiresAt == nil || s.ExpiresAt.After(now) {
			secrets = append(secrets, s.Value)
		}
	}
	signer, err := signing.New(w.Signing, secrets, signing.Options{})
	if err != nil {
		return store.Attempt{}, err
	}
	var b [8]byte
	rand.Read(b[:])
	evID := "evt_test_" + hex.EncodeToString(b[:])
	body, _ := json.Marshal(map[string]any{"id": evID, "type": "webhook.test", "timestamp": now.UTC().Format(time.RFC3339),
		"data": map[string]string{"webhook_id": id}})
	h := http.Header{}
	for k, v := range w.Headers {
		h.Set(k, v)
	}
	signer.Sign(h, signing.Message{ID: evID, Type: "webhook.test", Timestamp: now, Body: body})
	res := tt.client.Send(ctx, sender.Request{URL: w.URL, Header: h, Body: body, Timeout: 5 * time.Second})
	return store.Attempt{EventID: evID, EventType: "webhook.test", EndpointID: id, Number: 1, AttemptedAt: now,
		Duration: res.Duration, StatusCode: res.StatusCode, Error: res.ErrorText(), Response: string(res.Response)}, nil
}
