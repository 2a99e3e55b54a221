package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base32"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/tern/v2/migrate"
)

// DefaultSchema is the state schema used when none is configured.
const DefaultSchema = "walhook"

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Store is the retry store, attempts log, endpoint health and webhook
// registry in one Postgres schema. It is safe for concurrent use.
type Store struct {
	pool    *pgxpool.Pool
	schema  string
	quoted  string // pgx.Identifier{schema}.Sanitize()
	channel string
	slots   string        // SlotsChannel
	parkMax time.Duration // the longest ClaimDue parks a held-back delivery
	// instance is the id ClaimDue records as a lease's holder (SetInstance).
	instance atomic.Pointer[string]
}

// defaultParkMax bounds how long a lost wake-up can delay a key.
const defaultParkMax = 2 * time.Second

// Open migrates the state schema (creating it if needed) and returns a
// Store on it. Concurrent Opens from several processes are safe.
func Open(ctx context.Context, pool *pgxpool.Pool, schema string) (*Store, error) {
	if schema == "" {
		schema = DefaultSchema
	}
	if strings.ContainsRune(schema, 0) {
		return nil, fmt.Errorf("opening state store: schema name contains a NUL byte")
	}
	s := &Store{
		pool:    pool,
		schema:  schema,
		quoted:  pgx.Identifier{schema}.Sanitize(),
		channel: channelName(schema),
		slots:   cutChannel(schema + "_slots"),
		parkMax: defaultParkMax,
	}
	if err := s.migrate(ctx); err != nil {
		return nil, fmt.Errorf("migrating state schema %q: %w", schema, err)
	}
	return s, nil
}

// SetInstance names the instance this process registers as: ClaimDue
// records it as the holder of the leases it takes, so that they can be
// taken over when the instance dies (ReleaseDeadClaims). Without it,
// leases name no holder and only end with their time.
func (s *Store) SetInstance(id string) { s.instance.Store(&id) }

// instanceID is the id set by SetInstance; empty when none.
func (s *Store) instanceID() string {
	if id := s.instance.Load(); id != nil {
		return *id
	}
	return ""
}

// Schema is the name of the state schema.
func (s *Store) Schema() string { return s.schema }

// WebhooksChannel is the LISTEN/NOTIFY channel notified on every webhook
// change: "<schema>_webhooks", cut to Postgres' 63-byte identifier limit.
func (s *Store) WebhooksChannel() string { return s.channel }

// Drop removes the state schema and everything in it.
func Drop(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	if schema == "" {
		schema = DefaultSchema
	}
	if _, err := pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
		return fmt.Errorf("dropping state schema %q: %w", schema, err)
	}
	return nil
}

// migrate creates the schema and applies pending migrations, holding an
// advisory lock (per schema) so that concurrent Opens take turns.
func (s *Store) migrate(ctx context.Context) (err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquiring a connection: %w", err)
	}
	const lockKey = `hashtextextended('walhook.migrate.' || $1, 0)`
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock("+lockKey+")", s.schema); err != nil {
		conn.Release()
		return fmt.Errorf("taking the migration lock: %w", err)
	}
	defer func() {
		// A session lock must not go back to the pool: if unlocking fails,
		// close the connection, which releases the lock too.
		_, uerr := conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock("+lockKey+")", s.schema)
		if uerr != nil {
			_ = conn.Hijack().Close(context.WithoutCancel(ctx))
			if err == nil {
				err = fmt.Errorf("releasing the migration lock: %w", uerr)
			}
			return
		}
		conn.Release()
	}()
	if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+s.quoted); err != nil {
		return fmt.Errorf("creating schema: %w", err)
	}
	m, err := migrate.NewMigrator(ctx, conn.Conn(), s.quoted+".schema_version")
	if err != nil {
		return fmt.Errorf("preparing migrations: %w", err)
	}
	m.Data["schema"] = s.quoted
	m.Data["channel"] = quoteLiteral(s.channel)
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return fmt.Errorf("loading migrations: %w", err)
	}
	if err := m.LoadMigrations(sub); err != nil {
		return fmt.Errorf("loading migrations: %w", err)
	}
	if err := m.Migrate(ctx); err != nil {
		return err
	}
	return nil
}

// sql puts the quoted schema name in place of {s} in a query.
func (s *Store) sql(q string) string {
	return strings.ReplaceAll(q, "{s}", s.quoted)
}

// DeliveryID is the deterministic id of the delivery of an event to an
// endpoint: "dlv_" and 26 base32 characters of a SHA-256 of both ids.
func DeliveryID(eventID, endpointID string) string {
	var buf [128]byte // ids are short: hashed without an allocation
	in := append(buf[:0], eventID...)
	in = append(in, '|')
	in = append(in, endpointID...)
	sum := sha256.Sum256(in)
	return idText("dlv_", sum[:16])
}

// NewWebhookID returns a random webhook id: "ep_" and 26 base32 characters.
func NewWebhookID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return idText("ep_", b[:])
}

// idEncoding is base32 (RFC 4648) in lowercase, unpadded: the ids read as
// strings.ToLower of the standard encoding.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// idText is prefix (at most 8 bytes) followed by the base32 of b (at most
// 16 bytes), in one allocation.
func idText(prefix string, b []byte) string {
	var buf [8 + 26]byte
	n := copy(buf[:], prefix)
	idEncoding.Encode(buf[n:], b)
	return string(buf[:n+idEncoding.EncodedLen(len(b))])
}

// channelName is "<schema>_webhooks" cut at a rune boundary to 63 bytes,
// the longest name LISTEN and pg_notify accept.
func channelName(schema string) string { return cutChannel(schema + "_webhooks") }

// cutChannel cuts c at a rune boundary to 63 bytes.
func cutChannel(c string) string {
	for len(c) > 63 {
		_, size := utf8.DecodeLastRuneInString(c)
		c = c[:len(c)-size]
	}
	return c
}

// quoteLiteral quotes s as an SQL string literal, valid whatever
// standard_conforming_strings is.
func quoteLiteral(s string) string {
	q := "'" + strings.ReplaceAll(s, "'", "''") + "'"
	if strings.Contains(s, `\`) {
		q = "E" + strings.ReplaceAll(q, `\`, `\\`)
	}
	return q
}

// notFound maps pgx.ErrNoRows to ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return err
}
