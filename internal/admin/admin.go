package admin

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/netguard"
	"github.com/walhook/walhook/internal/rules"
	"github.com/walhook/walhook/internal/store"
)

// DefaultSecretOverlap is how long a rotated-out secret keeps signing
// unless Options or the request say otherwise.
const DefaultSecretOverlap = 24 * time.Hour

// Options configures the admin handler.
type Options struct {
	Store *store.Store
	// Tokens are the accepted admin bearer tokens; with none (and no
	// tenant tokens or sessions), every /v1 request is refused.
	Tokens []string
	// Sessions authenticates console sessions; nil: bearer tokens only.
	Sessions SessionAuth
	// Console is served at /ui/ (the web console); nil: 404.
	Console http.Handler
	// RequestHeaders rebuilds the headers an attempt was sent with, for
	// GET /v1/deliveries/{id}; nil leaves them out.
	RequestHeaders func(d store.Delivery, a store.Attempt) http.Header
	// Events is the event catalogue (GET /v1/events); webhook filters must
	// match at least one of them.
	Events []rules.EventInfo
	// Schemas describes events for GET /v1/events/{name} and its /schema;
	// nil answers 501 there.
	Schemas EventSchemas
	// ConfigEndpoints are the HCL endpoints, listed read-only.
	ConfigEndpoints []ConfigEndpoint
	// Guard checks API-registered URLs on create and update; nil allows
	// any http or https URL. Connect-time checks are the sender's job.
	Guard *netguard.Guard
	// SecretOverlap is how long a rotated-out secret keeps signing;
	// default 24h.
	SecretOverlap time.Duration
	// Tester sends test events; nil answers 501 on /test.
	Tester Tester
	// Ready reports readiness for /readyz: nil error means ready. Nil
	// Ready means always ready.
	Ready func(ctx context.Context) error
	// Backfills starts backfills; nil answers 501 on POST /v1/backfills.
	Backfills Backfills
	// Replays is woken after a replay of failed evaluations is asked for;
	// nil: the running walhook finds the request at its next poll.
	Replays Replays
	// Metrics is served at /metrics, without authentication; nil: 404.
	Metrics http.Handler
	// Frontend says how clients reach the listener (a proxy, public_url):
	// whose address a failed token counts against. Nil: directly.
	Frontend *Frontend
	// Backoff slows failed bearer tokens per client address; share the
	// console's. Nil: one of its own.
	Backoff *AuthBackoff
	Logger  zerolog.Logger
}

// Tester sends a webhook.test event to a webhook now, signed with its
// secrets, and returns the attempt (logged like any other).
type Tester interface {
	SendTest(ctx context.Context, webhookID string) (store.Attempt, error)
}

// ConfigEndpoint is an HCL endpoint as the API shows it: read-only and
// without its secrets or header values.
type ConfigEndpoint struct {
	ID          string // "cfg:<name>"
	Name        string
	URL         string
	Events      []string
	Signing     string
	Ordering    string
	HeaderNames []string
	Batch       *batchView // nil: one event per request
}

// ConfigEndpoints describes the HCL endpoints for Options.ConfigEndpoints.
func ConfigEndpoints(eps []*config.Endpoint) []ConfigEndpoint {
	out := make([]ConfigEndpoint, 0, len(eps))
	for _, ep := range eps {
		names := make([]string, 0, len(ep.Headers))
		for k := range ep.Headers {
			names = append(names, http.CanonicalHeaderKey(k))
		}
		sort.Strings(names)
		signing, ordering := ep.Signing, ep.Ordering
		if signing == "" {
			signing = "standard-webhooks"
		}
		if ordering == "" {
			ordering = config.OrderingNone
		}
		var batch *batchView
		if b := ep.Batch; b != nil {
			batch = &batchView{MaxEvents: b.MaxEvents, MaxBytes: b.MaxBytes, MaxWait: b.MaxWait.String()}
		}
		out = append(out, ConfigEndpoint{
			ID: "cfg:" + ep.Name, Name: ep.Name, URL: ep.URL, Events: ep.Events,
			Signing: signing, Ordering: string(ordering), HeaderNames: names, Batch: batch,
		})
	}
	return out
}

// server holds the handlers' dependencies.
type server struct {
	opts   Options
	auth   *Authenticator
	config map[string]ConfigEndpoint
	log    zerolog.Logger
}

// New returns the admin listener's handler: the /v1 API (bearer token
// required), /healthz, /readyz and /metrics.
func New(opts Options) http.Handler {
	if opts.SecretOverlap <= 0 {
		opts.SecretOverlap = DefaultSecretOverlap
	}
	if opts.Backoff == nil {
		opts.Backoff = NewAuthBackoff(time.Now)
	}
	s := &server{opts: opts, config: map[string]ConfigEndpoint{}, log: opts.Logger.With().Str("component", "admin").Logger()}
	s.auth = NewAuthenticator(opts.Tokens, opts.Store)
	for _, ep := range opts.ConfigEndpoints {
		s.config[ep.ID] = ep
	}

	v1 := http.NewServeMux()
	route(v1, "/v1/webhooks", methods{http.MethodGet: s.listWebhooks, http.MethodPost: s.createWebhook})
	route(v1, "/v1/webhooks/{id}", methods{http.MethodGet: s.getWebhook, http.MethodPatch: s.patchWebhook, http.MethodDelete: s.deleteWebhook})
	route(v1, "/v1/webhooks/{id}/test", methods{http.MethodPost: s.testWebhook})
	route(v1, "/v1/webhooks/{id}/rotate-secret", methods{http.MethodPost: s.rotateSecret})
	route(v1, "/v1/webhooks/{id}/deliveries", methods{http.MethodGet: s.listDeliveries})
	route(v1, "/v1/webhooks/{id}/recover", methods{http.MethodPost: s.recoverDeliveries})
	route(v1, "/v1/webhooks/{id}/enable", methods{http.MethodPost: s.enableWebhook})
	route(v1, "/v1/deliveries", methods{http.MethodGet: s.listAllDeliveries})
	route(v1, "/v1/deliveries/{id}", methods{http.MethodGet: s.getDelivery})
	route(v1, "/v1/deliveries/{id}/retry", methods{http.MethodPost: s.retryDelivery})
	route(v1, "/v1/tokens", methods{http.MethodGet: adminOnly(s.listTokens), http.MethodPost: adminOnly(s.createToken)})
	route(v1, "/v1/tokens/{id}", methods{http.MethodDelete: adminOnly(s.revokeToken)})
	route(v1, "/v1/events", methods{http.MethodGet: s.listEvents})
	route(v1, "/v1/events/{name}", methods{http.MethodGet: s.getEvent})
	route(v1, "/v1/events/{name}/schema", methods{http.MethodGet: s.getEventSchema})
	// A backfill reads any table of the source and may target any
	// endpoint: admin tokens only.
	route(v1, "/v1/backfills", methods{http.MethodGet: adminOnly(s.listBackfills), http.MethodPost: adminOnly(s.createBackfill)})
	route(v1, "/v1/backfills/{id}", methods{http.MethodGet: adminOnly(s.getBackfill), http.MethodDelete: adminOnly(s.cancelBackfill)})
	route(v1, "/v1/backfills/{id}/pause", methods{http.MethodPost: adminOnly(s.pauseBackfill)})
	route(v1, "/v1/backfills/{id}/resume", methods{http.MethodPost: adminOnly(s.resumeBackfill)})
	// Failed evaluations hold rows of any table: admin tokens only.
	route(v1, "/v1/evaluations", methods{http.MethodGet: adminOnly(s.listEvaluations)})
	route(v1, "/v1/evaluations/replay", methods{http.MethodPost: adminOnly(s.replayEvaluations)})
	route(v1, "/v1/evaluations/{id}", methods{http.MethodGet: adminOnly(s.getEvaluation)})
	route(v1, "/v1/evaluations/{id}/replay", methods{http.MethodPost: adminOnly(s.replayEvaluation)})
	// Instances name hosts, pids and listen addresses: admin tokens only.
	route(v1, "/v1/instances", methods{http.MethodGet: adminOnly(s.listInstances)})
	v1.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errorf(http.StatusNotFound, CodeNotFound, "no route %s %s", r.Method, r.URL.Path))
	})

	root := http.NewServeMux()
	root.Handle("/v1/", s.authenticate(v1))
	route(root, "/healthz", methods{http.MethodGet: s.healthz})
	route(root, "/readyz", methods{http.MethodGet: s.readyz})
	root.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		if opts.Metrics == nil {
			writeError(w, errorf(http.StatusNotFound, CodeNotFound, "metrics are not enabled"))
			return
		}
		opts.Metrics.ServeHTTP(w, r)
	})
	if opts.Console != nil {
		root.Handle("/ui/", opts.Console)
		root.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusFound))
	}
	root.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errorf(http.StatusNotFound, CodeNotFound, "no route %s %s", r.Method, r.URL.Path))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// No response of the listener is to be sniffed into another type.
		w.Header().Set("X-Content-Type-Options", "nosniff")
		root.ServeHTTP(w, r)
	})
}

// handler is a route's handler: it answers itself or returns an error to
// be answered as JSON.
type handler func(w http.ResponseWriter, r *http.Request) *apiError

// methods maps HTTP methods to the handlers of one path.
type methods map[string]handler

// route registers path with one handler per method; other methods get a
// JSON 405 with Allow (HEAD is served as GET).
func route(mux *http.ServeMux, path string, ms methods) {
	allow := make([]string, 0, len(ms))
	for m := range ms {
		allow = append(allow, m)
	}
	sort.Strings(allow)
	mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		h, ok := ms[r.Method]
		if !ok && r.Method == http.MethodHead {
			h, ok = ms[http.MethodGet]
		}
		if !ok {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(w, errorf(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "%s is not allowed on %s (allowed: %s)", r.Method, path, strings.Join(allow, ", ")))
			return
		}
		if e := h(w, r); e != nil {
			writeError(w, e)
		}
	})
}

func (s *server) healthz(w http.ResponseWriter, r *http.Request) *apiError {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (s *server) readyz(w http.ResponseWriter, r *http.Request) *apiError {
	if s.opts.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if err := s.opts.Ready(ctx); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": err.Error()})
			return nil
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}

// internal logs err and returns a 500 that does not expose it.
func (s *server) internal(r *http.Request, what string, err error) *apiError {
	s.log.Error().Err(err).Str("method", r.Method).Str("path", r.URL.Path).Msg(what)
	return errorf(http.StatusInternalServerError, CodeInternal, "%s failed; see the walhook log", what)
}
