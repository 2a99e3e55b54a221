package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/walhook/walhook/internal/store"
)

// ErrInvalidToken is returned by Authenticator.Check for a token that is
// neither an admin token nor an unrevoked tenant token.
var ErrInvalidToken = errors.New("invalid token")

// ErrCSRF is returned by a SessionAuth when a state-changing request
// carries a session but not its CSRF token; it is answered 403.
var ErrCSRF = errors.New("missing or wrong CSRF token")

// Principal is who a request acts as: an admin (Tenant empty) or one
// tenant, who sees only that tenant's webhooks and deliveries.
type Principal struct {
	Tenant  string
	TokenID string // the tenant token's id; empty for an admin
}

// Scoped reports whether p sees only one tenant.
func (p Principal) Scoped() bool { return p.Tenant != "" }

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal an authenticated request acts as.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// SessionAuth authenticates a request by a console session instead of a
// bearer token (the console package implements it).
type SessionAuth interface {
	// SessionPrincipal returns the principal of r's session. ok is false
	// when r carries no session at all; an error refuses r: ErrCSRF for a
	// state-changing request without its CSRF token, any other error for
	// an unknown or ended session.
	SessionPrincipal(r *http.Request) (p Principal, ok bool, err error)
}

// Authenticator checks admin tokens (from the config) and tenant tokens
// (from the store, by hash).
type Authenticator struct {
	admin [][sha256.Size]byte
	store *store.Store
}

// NewAuthenticator accepts the admin tokens and, with st, tenant tokens.
func NewAuthenticator(tokens []string, st *store.Store) *Authenticator {
	a := &Authenticator{store: st}
	for _, t := range tokens {
		if t != "" {
			a.admin = append(a.admin, sha256.Sum256([]byte(t)))
		}
	}
	return a
}

// Check returns the principal of token, ErrInvalidToken when it is not
// valid, or an error when the store cannot be read. Admin tokens are all
// compared, in constant time over SHA-256 digests so that lengths do not
// leak either; tenant tokens are looked up by their SHA-256.
func (a *Authenticator) Check(ctx context.Context, token string) (Principal, error) {
	token = strings.TrimSpace(token)
	if token == "" {
		return Principal{}, ErrInvalidToken
	}
	given := sha256.Sum256([]byte(token))
	match := 0
	for _, t := range a.admin {
		match |= subtle.ConstantTimeCompare(given[:], t[:])
	}
	if match == 1 {
		return Principal{}, nil
	}
	if a.store == nil || !strings.HasPrefix(token, store.TenantTokenPrefix) {
		return Principal{}, ErrInvalidToken
	}
	t, err := a.store.APITokenByHash(ctx, given[:])
	if errors.Is(err, store.ErrNotFound) {
		return Principal{}, ErrInvalidToken
	}
	if err != nil {
		return Principal{}, fmt.Errorf("checking a tenant token: %w", err)
	}
	return Principal{Tenant: t.Tenant, TokenID: t.ID}, nil
}

// authenticate requires a bearer token (an admin or tenant token) or,
// without an Authorization header, a console session; the handlers see
// the principal through PrincipalFrom.
func (s *server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		if auth == "" && s.opts.Sessions != nil {
			p, ok, err := s.opts.Sessions.SessionPrincipal(r)
			switch {
			case errors.Is(err, ErrForeignOrigin):
				writeError(w, errorf(http.StatusForbidden, CodeForbidden, "%v", err))
				return
			case errors.Is(err, ErrCSRF):
				writeError(w, errorf(http.StatusForbidden, CodeForbidden, "%v: send the X-CSRF-Token header the console gave this session", err))
				return
			case err != nil:
				writeError(w, errorf(http.StatusUnauthorized, CodeUnauthorized, "%v: log in again", err))
				return
			case ok:
				next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
				return
			}
		}
		scheme, token, ok := strings.Cut(auth, " ")
		if auth == "" || !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="walhook"`)
			writeError(w, errorf(http.StatusUnauthorized, CodeUnauthorized, "missing bearer token: send Authorization: Bearer <token> (admin.token in the config)"))
			return
		}
		addr := s.opts.Frontend.ClientAddr(r)
		if wait := s.opts.Backoff.Wait(addr, RouteAPI); wait > 0 {
			secs := int((wait + time.Second - 1) / time.Second)
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			writeError(w, errorf(http.StatusTooManyRequests, CodeTooManyAttempts, "too many wrong tokens from this address; try again in %ds", secs))
			return
		}
		p, err := s.auth.Check(r.Context(), token)
		if errors.Is(err, ErrInvalidToken) {
			s.opts.Backoff.Failed(addr, RouteAPI)
			s.log.Warn().Str("remote", addr).Msg("a wrong bearer token")
			w.Header().Set("WWW-Authenticate", `Bearer realm="walhook", error="invalid_token"`)
			writeError(w, errorf(http.StatusUnauthorized, CodeUnauthorized, "invalid bearer token"))
			return
		}
		if err != nil {
			writeError(w, s.internal(r, "checking the bearer token", err))
			return
		}
		next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}

// tenantScope returns the tenant a request is limited to: a tenant
// principal's own, else the ?tenant= query parameter when given.
func tenantScope(r *http.Request) (string, bool) {
	if p, _ := PrincipalFrom(r.Context()); p.Scoped() {
		return p.Tenant, true
	}
	return tenantParam(r.URL.Query())
}

// adminOnly refuses a tenant principal.
func adminOnly(h handler) handler {
	return func(w http.ResponseWriter, r *http.Request) *apiError {
		if p, _ := PrincipalFrom(r.Context()); p.Scoped() {
			return errorf(http.StatusForbidden, CodeForbidden, "a tenant token cannot %s %s; use an admin token", r.Method, r.URL.Path)
		}
		return h(w, r)
	}
}
