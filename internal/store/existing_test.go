package store

import (
	"context"
	"errors"
	"testing"
)

func TestOpenExisting(t *testing.T) {
	t.Parallel()
	db := setupEmpty(t)
	ctx := context.Background()
	if _, err := OpenExisting(ctx, db.Pool, "walhook_missing"); !errors.Is(err, ErrNoSchema) {
		t.Fatalf("OpenExisting on no schema: %v, want ErrNoSchema", err)
	}
	var exists bool
	if err := db.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'walhook_missing')`).Scan(&exists); err != nil || exists {
		t.Fatalf("OpenExisting created the schema (%v, %v)", exists, err)
	}
	if _, err := Open(ctx, db.Pool, "walhook_there"); err != nil {
		t.Fatal(err)
	}
	st, err := OpenExisting(ctx, db.Pool, "walhook_there")
	if err != nil || st.Schema() != "walhook_there" {
		t.Fatalf("OpenExisting on a schema Open made: %v", err)
	}
}
