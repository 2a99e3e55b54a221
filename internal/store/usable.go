package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
)

// Usable checks that the state database answers and the state schema is
// still there (for /readyz): an error wrapping ErrNoSchema when the schema
// or its tables were dropped while walhook ran.
func (s *Store) Usable(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, s.sql(`SELECT FROM {s}.deliveries LIMIT 0`))
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "3F000" || pgErr.Code == "42P01") { // invalid_schema_name, undefined_table
		return fmt.Errorf("%w %q: it was dropped while walhook ran, and with it the pending retries, the attempts log and the webhooks registered through the API; nothing can be settled that needs the store (restart walhook to create it again): %s", ErrNoSchema, s.schema, pgErr.Message)
	}
	if err != nil {
		return fmt.Errorf("reading the state schema %q: %w", s.schema, err)
	}
	return nil
}
