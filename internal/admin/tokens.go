package admin

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/walhook/walhook/internal/store"
)

// tokenView is a tenant token as the API shows it; Token is set only in
// the answer that creates it.
type tokenView struct {
	ID        string     `json:"id"`
	Tenant    string     `json:"tenant"`
	Name      string     `json:"name,omitempty"`
	Hint      string     `json:"hint"`
	Token     string     `json:"token,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

func viewToken(t store.APIToken) tokenView {
	return tokenView{ID: t.ID, Tenant: t.Tenant, Name: t.Name, Hint: t.Hint, CreatedAt: t.CreatedAt, RevokedAt: t.RevokedAt}
}

// tokenInput is the body of POST /v1/tokens.
type tokenInput struct {
	Tenant string `json:"tenant"`
	Name   string `json:"name"`
}

// createToken answers POST /v1/tokens {"tenant", "name"}: 201 with the
// token in full, the only time it is shown (only its SHA-256 is stored).
func (s *server) createToken(w http.ResponseWriter, r *http.Request) *apiError {
	var in tokenInput
	if e := decodeBody(w, r, &in, false); e != nil {
		return e
	}
	if strings.TrimSpace(in.Tenant) == "" {
		return invalid("tenant", "tenant is required: the token sees this tenant's webhooks and deliveries only")
	}
	if e := checkTenant(in.Tenant); e != nil {
		return e
	}
	if e := checkText("name", in.Name, maxDescriptionBytes); e != nil {
		return e
	}
	t, token, err := s.opts.Store.CreateAPIToken(r.Context(), in.Tenant, in.Name)
	if err != nil {
		return s.internal(r, "creating the token", err)
	}
	s.log.Info().Str("token_id", t.ID).Str("tenant", t.Tenant).Msg("tenant token created")
	v := viewToken(t)
	v.Token = token
	w.Header().Set("Location", "/v1/tokens/"+t.ID)
	writeJSON(w, http.StatusCreated, v)
	return nil
}

// listTokens answers GET /v1/tokens?tenant=: tenant tokens, revoked ones
// included, without the tokens themselves.
func (s *server) listTokens(w http.ResponseWriter, r *http.Request) *apiError {
	ts, err := s.opts.Store.ListAPITokens(r.Context(), r.URL.Query().Get("tenant"))
	if err != nil {
		return s.internal(r, "listing tokens", err)
	}
	out := make([]tokenView, len(ts))
	for i, t := range ts {
		out[i] = viewToken(t)
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": out})
	return nil
}

// revokeToken answers DELETE /v1/tokens/{id}: the token stops working at
// once (console sessions opened with it included) and is kept, revoked,
// in the list.
func (s *server) revokeToken(w http.ResponseWriter, r *http.Request) *apiError {
	id := r.PathValue("id")
	t, err := s.opts.Store.RevokeAPIToken(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("token", id)
	}
	if err != nil {
		return s.internal(r, "revoking the token", err)
	}
	s.log.Info().Str("token_id", t.ID).Str("tenant", t.Tenant).Msg("tenant token revoked")
	writeJSON(w, http.StatusOK, viewToken(t))
	return nil
}
