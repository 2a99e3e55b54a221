package store

import (
	"errors"
	"strings"
	"testing"
)

// TestUsable: a store is usable until its schema is dropped under it; then
// the error wraps ErrNoSchema and names the schema.
func TestUsable(t *testing.T) {
	t.Parallel()
	s, db := setup(t)
	if err := s.Usable(ctx(t)); err != nil {
		t.Fatalf("a fresh store: %v", err)
	}
	if err := Drop(ctx(t), db.Pool, s.Schema()); err != nil {
		t.Fatal(err)
	}
	err := s.Usable(ctx(t))
	if !errors.Is(err, ErrNoSchema) || !strings.Contains(err.Error(), "dropped while walhook ran") {
		t.Fatalf("a dropped schema: %v, want ErrNoSchema", err)
	}
}
