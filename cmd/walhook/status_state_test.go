package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/walhook/walhook/internal/store"
)

// TestStatusStateSchemaDropped: with walhook's slot there and its state
// schema gone, status says the schema was dropped, not that walhook has
// not run yet.
func TestStatusStateSchemaDropped(t *testing.T) {
	t.Parallel()
	e := setupOps(t, true)
	if err := store.Drop(context.Background(), e.db.Pool, "walhook"); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := execute(context.Background(), []string{"status", "-c", e.cfgPath}, testApp(&out, &errOut)); code != 0 {
		t.Fatalf("status exit %d: %s", code, errOut.String())
	}
	text := out.String()
	for _, want := range []string{`state: state schema "walhook" is missing, but slot ` + e.slot + ` exists`, "the schema was dropped", "restart it"} {
		if !strings.Contains(text, want) {
			t.Errorf("status lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "has not run against it yet") || e.schemaExists(t) {
		t.Errorf("status with a dropped schema: %q (schema created: %v)", text, e.schemaExists(t))
	}
}
