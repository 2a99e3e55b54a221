// Package console is walhook's web console: a single page served at /ui/
// on the admin listener, its session login, the overview data and the
// live tail. The page itself calls the admin API (/v1) with its session
// cookie and CSRF token; see docs/console.md.
package console

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/walhook/walhook/internal/admin"
	"github.com/walhook/walhook/internal/store"
)

//go:embed ui
var uiFiles embed.FS

// ContentSecurityPolicy is sent with every console response: scripts,
// styles and connections from this origin only, nothing inline, no
// framing.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// SourceStatus is the change source as the overview shows it.
type SourceStatus struct {
	Mode         string   `json:"mode"` // "logical" or "outbox"
	Name         string   `json:"name"` // slot or outbox table
	Connected    bool     `json:"connected"`
	Streaming    bool     `json:"streaming"`
	LagBytes     *float64 `json:"lag_bytes,omitempty"`
	LagSeconds   *float64 `json:"lag_seconds,omitempty"`
	ConfirmedLSN string   `json:"confirmed_lsn,omitempty"`
	LastError    string   `json:"last_error,omitempty"`
	// RowsWaiting (an estimate when RowsEstimated) and OldestAgeSeconds
	// are the polled outbox table's backlog; nil when not read.
	RowsWaiting      *int64   `json:"rows_waiting,omitempty"`
	RowsEstimated    bool     `json:"rows_estimated,omitempty"`
	OldestAgeSeconds *float64 `json:"oldest_age_seconds,omitempty"`
}

// EndpointRuntime is what the running dispatcher knows of an endpoint.
// Concurrency is its current adaptive limit (the configured ceiling
// before it had work); InFlight and RatePerSecond (first attempts per
// second) are filled when the dispatcher reports them (nil: not known).
// RateLimit is the configured rate_limit ("500/s"), empty for none.
type EndpointRuntime struct {
	Concurrency   int      `json:"concurrency"`
	RateLimit     string   `json:"rate_limit,omitempty"`
	InFlight      *int     `json:"in_flight,omitempty"`
	RatePerSecond *float64 `json:"rate_per_second,omitempty"`
}

// Options configures the console.
type Options struct {
	Auth  *admin.Authenticator
	Store *store.Store
	Tail  *Tail
	// Source reports the change source; nil leaves it out of the overview.
	Source func() SourceStatus
	// Runtime reports the dispatcher's endpoints by id; nil: none.
	Runtime func() map[string]EndpointRuntime
	// Frontend says how browsers reach the console (a proxy, public_url);
	// nil: directly.
	Frontend *admin.Frontend
	// Backoff slows failed logins per client address; share it with the
	// admin API (admin.Options.Backoff). Nil: one of the console's own.
	Backoff *admin.AuthBackoff
	Logger  zerolog.Logger
}

// Console serves /ui/ and authenticates console sessions for the admin API.
type Console struct {
	opts     Options
	sessions *sessions
	static   http.Handler
	mux      *http.ServeMux
	log      zerolog.Logger
}

var _ admin.SessionAuth = (*Console)(nil)

// New returns the console.
func New(opts Options) *Console {
	if opts.Tail == nil {
		opts.Tail = NewTail()
	}
	if opts.Backoff == nil {
		opts.Backoff = admin.NewAuthBackoff(time.Now)
	}
	sub, err := fs.Sub(uiFiles, "ui")
	if err != nil {
		panic("console: embedded ui directory missing: " + err.Error()) // the embed directive guarantees it
	}
	c := &Console{
		opts:     opts,
		sessions: newSessions(time.Now),
		static:   http.StripPrefix("/ui/assets/", http.FileServerFS(sub)),
		mux:      http.NewServeMux(),
		log:      opts.Logger.With().Str("component", "console").Logger(),
	}
	c.mux.HandleFunc("GET /ui/{$}", c.page)
	c.mux.HandleFunc("GET /ui/t/{tenant}/{$}", c.page)
	c.mux.HandleFunc("GET /ui/assets/", c.asset)
	c.mux.HandleFunc("POST /ui/api/login", c.login)
	c.mux.HandleFunc("POST /ui/api/logout", c.logout)
	c.mux.HandleFunc("GET /ui/api/session", c.withSession(c.sessionInfo))
	c.mux.HandleFunc("GET /ui/api/overview", c.withSession(c.overview))
	c.mux.HandleFunc("GET /ui/api/runtime", c.withSession(c.runtime))
	c.mux.HandleFunc("GET /ui/api/tail", c.withSession(c.tail))
	c.mux.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, errorBody("not_found", "no console route "+r.Method+" "+r.URL.Path))
	})
	return c
}

// Backoff is the failed-authentication backoff the console uses, to be
// shared with the admin API and registered with the metrics.
func (c *Console) Backoff() *admin.AuthBackoff { return c.opts.Backoff }

// Tail is the console's live tail (a dispatch.Observer to wire in).
func (c *Console) Tail() *Tail { return c.opts.Tail }

// ServeHTTP serves /ui/ with the console's security headers.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	c.mux.ServeHTTP(w, r)
}

// page serves the single page; the script routes within it.
func (c *Console) page(w http.ResponseWriter, r *http.Request) {
	body, err := fs.ReadFile(uiFiles, "ui/index.html")
	if err != nil {
		http.Error(w, "console page missing", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(body)
}

func (c *Console) asset(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-cache")
	c.static.ServeHTTP(w, r)
}

// SessionPrincipal implements admin.SessionAuth: the principal of the
// request's session cookie, with the CSRF token required on
// state-changing requests and tenant sessions ended when their token is
// revoked.
func (c *Console) SessionPrincipal(r *http.Request) (admin.Principal, bool, error) {
	ck, err := r.Cookie(CookieName)
	if err != nil || ck.Value == "" {
		return admin.Principal{}, false, nil
	}
	s, ok := c.sessions.get(ck.Value)
	if !ok {
		return admin.Principal{}, false, errSessionEnded
	}
	if err := checkCSRF(r, s, c.opts.Frontend); err != nil {
		return admin.Principal{}, false, err
	}
	if s.p.Scoped() && c.opts.Store != nil {
		active, err := c.opts.Store.APITokenActive(r.Context(), s.p.TokenID)
		if err != nil {
			return admin.Principal{}, false, err
		}
		if !active {
			c.sessions.end(ck.Value)
			return admin.Principal{}, false, errors.New("the tenant token of this session was revoked")
		}
	}
	return s.p, true, nil
}

// withSession requires a session (and CSRF token when it changes state).
func (c *Console) withSession(next func(w http.ResponseWriter, r *http.Request, p admin.Principal)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok, err := c.SessionPrincipal(r)
		switch {
		case errors.Is(err, admin.ErrCSRF), errors.Is(err, admin.ErrForeignOrigin):
			writeJSON(w, http.StatusForbidden, errorBody(admin.CodeForbidden, err.Error()))
		case err != nil:
			writeJSON(w, http.StatusUnauthorized, errorBody(admin.CodeUnauthorized, err.Error()))
		case !ok:
			writeJSON(w, http.StatusUnauthorized, errorBody(admin.CodeUnauthorized, "log in first"))
		default:
			next(w, r, p)
		}
	}
}

// maxLoginBytes caps the body of POST /ui/api/login; larger gets 413.
const maxLoginBytes = 4096

// loginInput is the body of POST /ui/api/login.
type loginInput struct {
	Token string `json:"token"`
}

// login exchanges a token (admin or tenant) for a session cookie. Wrong
// tokens are refused, and repeated failures from one address must wait.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	addr := c.opts.Frontend.ClientAddr(r)
	if wait := c.opts.Backoff.Wait(addr, admin.RouteConsole); wait > 0 {
		secs := int((wait + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		writeJSON(w, http.StatusTooManyRequests, errorBody(admin.CodeTooManyAttempts,
			"too many wrong tokens from this address; try again in "+strconv.Itoa(secs)+"s"))
		return
	}
	if err := c.opts.Frontend.CheckOrigin(r); err != nil {
		writeJSON(w, http.StatusForbidden, errorBody(admin.CodeForbidden, "login refused: "+err.Error()))
		return
	}
	if mt, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); strings.TrimSpace(mt) != "application/json" {
		writeJSON(w, http.StatusUnsupportedMediaType, errorBody(admin.CodeMediaType, "send the token as JSON: {\"token\": \"…\"}"))
		return
	}
	var in loginInput
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxLoginBytes)).Decode(&in); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeJSON(w, http.StatusRequestEntityTooLarge, errorBody(admin.CodeBodyTooLarge, "a login body is at most "+strconv.Itoa(maxLoginBytes)+" bytes"))
			return
		}
		writeJSON(w, http.StatusBadRequest, errorBody(admin.CodeInvalidRequest, "send the token as JSON: {\"token\": \"…\"}"))
		return
	}
	p, err := c.opts.Auth.Check(r.Context(), in.Token)
	if errors.Is(err, admin.ErrInvalidToken) {
		c.opts.Backoff.Failed(addr, admin.RouteConsole)
		c.log.Warn().Str("remote", addr).Msg("console login with a wrong token")
		writeJSON(w, http.StatusUnauthorized, errorBody(admin.CodeUnauthorized, "wrong token"))
		return
	}
	if err != nil {
		c.log.Error().Err(err).Msg("console login")
		writeJSON(w, http.StatusInternalServerError, errorBody(admin.CodeInternal, "checking the token failed; see the walhook log"))
		return
	}
	cookie, csrf := c.sessions.start(p)
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: cookie, Path: "/", HttpOnly: true, Secure: c.opts.Frontend.Secure(r),
		SameSite: http.SameSiteStrictMode, MaxAge: int(sessionMax / time.Second),
	})
	c.log.Info().Str("remote", addr).Str("tenant", p.Tenant).Msg("console login")
	writeJSON(w, http.StatusOK, sessionView(p, csrf))
}

// logout ends the session (CSRF token required) and clears the cookie.
func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	ck, err := r.Cookie(CookieName)
	if err == nil {
		if s, ok := c.sessions.get(ck.Value); ok {
			if err := checkCSRF(r, s, c.opts.Frontend); err != nil {
				writeJSON(w, http.StatusForbidden, errorBody(admin.CodeForbidden, err.Error()))
				return
			}
			c.sessions.end(ck.Value)
		}
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", HttpOnly: true, Secure: c.opts.Frontend.Secure(r),
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
	w.WriteHeader(http.StatusNoContent)
}

func sessionView(p admin.Principal, csrf string) map[string]any {
	return map[string]any{"tenant": p.Tenant, "csrf_token": csrf}
}

// sessionInfo answers who the session is and its CSRF token (the page
// keeps it in memory, never in storage).
func (c *Console) sessionInfo(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	ck, _ := r.Cookie(CookieName)
	s, _ := c.sessions.get(ck.Value)
	writeJSON(w, http.StatusOK, sessionView(p, s.csrf))
}

// overview answers the overview page's data: the source, the retry queue
// and the chart. Admins only.
func (c *Console) overview(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	if p.Scoped() {
		writeJSON(w, http.StatusForbidden, errorBody(admin.CodeForbidden, "the overview is for admins"))
		return
	}
	out := map[string]any{"rates": c.opts.Tail.Rates(), "step_seconds": rateStep.Seconds()}
	if c.opts.Source != nil {
		out["source"] = c.opts.Source()
	}
	if c.opts.Store != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		q, err := c.opts.Store.Stats(ctx)
		if err != nil {
			c.log.Error().Err(err).Msg("reading queue stats")
		} else {
			out["queue"] = map[string]int64{"pending": q.Pending, "due": q.Due, "failed": q.Failed}
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// runtime answers the dispatcher's view of the endpoints the session may
// see.
func (c *Console) runtime(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	all := map[string]EndpointRuntime{}
	if c.opts.Runtime != nil {
		all = c.opts.Runtime()
	}
	if p.Scoped() {
		own, err := c.tenantEndpoints(r.Context(), p.Tenant)
		if err != nil {
			c.log.Error().Err(err).Msg("listing tenant endpoints")
			writeJSON(w, http.StatusInternalServerError, errorBody(admin.CodeInternal, "listing endpoints failed; see the walhook log"))
			return
		}
		for id := range all {
			if !own[id] {
				delete(all, id)
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": all})
}

// tenantEndpoints is the set of a tenant's webhook ids.
func (c *Console) tenantEndpoints(ctx context.Context, tenant string) (map[string]bool, error) {
	own := map[string]bool{}
	if c.opts.Store == nil {
		return own, nil
	}
	hooks, _, err := c.opts.Store.ListWebhooks(ctx, tenant, store.MaxListLimit, "")
	if err != nil {
		return nil, err
	}
	for _, h := range hooks {
		own[h.ID] = true
	}
	return own, nil
}

func errorBody(code, msg string) map[string]any {
	return map[string]any{"error": map[string]string{"code": code, "message": msg}}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
