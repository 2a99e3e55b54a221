package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// TenantTokenPrefix starts every tenant token, so one is told apart from
// an admin token (and found by secret scanners).
const TenantTokenPrefix = "wht_"

// APIToken is a tenant-scoped API token as stored: its hash, never itself.
type APIToken struct {
	ID        string // "tok_…"
	Tenant    string
	Name      string
	Hint      string // "wht_…abcd"
	CreatedAt time.Time
	RevokedAt *time.Time
}

const apiTokenColumns = `id, tenant, name, hint, created_at, revoked_at`

func scanAPIToken(row pgx.Row) (APIToken, error) {
	var t APIToken
	err := row.Scan(&t.ID, &t.Tenant, &t.Name, &t.Hint, &t.CreatedAt, &t.RevokedAt)
	return t, err
}

// HashToken is the digest a token is stored and looked up by.
func HashToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// CreateAPIToken makes a token for tenant and returns it with the token
// itself, which is not stored and cannot be read again.
func (s *Store) CreateAPIToken(ctx context.Context, tenant, name string) (APIToken, string, error) {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	token := TenantTokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	var idb [16]byte
	_, _ = rand.Read(idb[:])
	id := idText("tok_", idb[:])
	hint := TenantTokenPrefix + "…" + token[len(token)-4:]
	t, err := scanAPIToken(s.pool.QueryRow(ctx, s.sql(`INSERT INTO {s}.api_tokens (id, tenant, name, token_hash, hint)
		VALUES ($1, $2, $3, $4, $5) RETURNING `+apiTokenColumns), id, tenant, name, HashToken(token), hint))
	if err != nil {
		return APIToken{}, "", fmt.Errorf("creating an API token for tenant %q: %w", tenant, err)
	}
	return t, token, nil
}

// APITokenByHash returns the unrevoked token with this hash, or ErrNotFound.
func (s *Store) APITokenByHash(ctx context.Context, hash []byte) (APIToken, error) {
	t, err := scanAPIToken(s.pool.QueryRow(ctx, s.sql(`SELECT `+apiTokenColumns+` FROM {s}.api_tokens
		WHERE token_hash = $1 AND revoked_at IS NULL`), hash))
	if err != nil {
		return APIToken{}, fmt.Errorf("looking up an API token: %w", notFound(err))
	}
	return t, nil
}

// ListAPITokens returns the tokens of one tenant, or (tenant "") of all,
// oldest first, revoked ones included.
func (s *Store) ListAPITokens(ctx context.Context, tenant string) ([]APIToken, error) {
	rows, err := s.pool.Query(ctx, s.sql(`SELECT `+apiTokenColumns+` FROM {s}.api_tokens
		WHERE ($1 = '' OR tenant = $1) ORDER BY created_at, id`), tenant)
	if err != nil {
		return nil, fmt.Errorf("listing API tokens: %w", err)
	}
	ts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (APIToken, error) { return scanAPIToken(r) })
	if err != nil {
		return nil, fmt.Errorf("listing API tokens: %w", err)
	}
	return ts, nil
}

// RevokeAPIToken revokes a token (it stops working at once) and returns
// it; revoking a revoked token keeps its first RevokedAt. ErrNotFound when
// there is no such token.
func (s *Store) RevokeAPIToken(ctx context.Context, id string) (APIToken, error) {
	t, err := scanAPIToken(s.pool.QueryRow(ctx, s.sql(`UPDATE {s}.api_tokens SET revoked_at = coalesce(revoked_at, now())
		WHERE id = $1 RETURNING `+apiTokenColumns), id))
	if err != nil {
		return APIToken{}, fmt.Errorf("revoking API token %s: %w", id, notFound(err))
	}
	return t, nil
}

// APITokenActive reports whether the token with this id exists and is
// not revoked.
func (s *Store) APITokenActive(ctx context.Context, id string) (bool, error) {
	var active bool
	err := s.pool.QueryRow(ctx, s.sql(`SELECT EXISTS (SELECT 1 FROM {s}.api_tokens WHERE id = $1 AND revoked_at IS NULL)`), id).Scan(&active)
	if err != nil {
		return false, fmt.Errorf("checking API token %s: %w", id, err)
	}
	return active, nil
}
