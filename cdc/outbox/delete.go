package outbox

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Execer runs a statement: a pool, a connection or a transaction.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// DeleteRows deletes the rows with ids from the outbox table ("schema.table"),
// as delete_consumed does for rows read through the slot.
func DeleteRows(ctx context.Context, db Execer, table string, ids []int64) error {
	schema, name, err := SplitTable(table)
	if err != nil {
		return err
	}
	q := `DELETE FROM ` + pgx.Identifier{schema, name}.Sanitize() + ` WHERE id = ANY($1)`
	if _, err := db.Exec(ctx, q, ids); err != nil {
		return fmt.Errorf("deleting %d consumed rows of %s: %w", len(ids), table, err)
	}
	return nil
}
