package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNoSchema is returned by OpenExisting when the state schema does not
// exist: walhook has not run against the database yet.
var ErrNoSchema = errors.New("no state schema")

// OpenExisting is Open for tools that read the state (walhook status,
// deliveries): it does not create the schema, and returns ErrNoSchema
// when it is missing.
func OpenExisting(ctx context.Context, pool *pgxpool.Pool, schema string) (*Store, error) {
	if schema == "" {
		schema = DefaultSchema
	}
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists); err != nil {
		return nil, fmt.Errorf("looking up state schema %q: %w", schema, err)
	}
	if !exists {
		return nil, fmt.Errorf("%w %q in the state database: walhook has not run against it yet", ErrNoSchema, schema)
	}
	return Open(ctx, pool, schema)
}
