package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/walhook/walhook/testenv"
)

// TestValidateOutboxTable: validate --db reports an outbox table with the
// wrong column names at the config's table attribute with the SQL that
// fixes it, and says ok once the fix is applied; a nullable event_type
// is a warning; the capture triggers the rules' tables lack are errors
// naming `walhook triggers install`.
func TestValidateOutboxTable(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	path := filepath.Join(t.TempDir(), "walhook.hcl")
	src := fmt.Sprintf(`source "postgres" {
  url  = %q
  mode = "outbox"
  outbox {
    table  = "public.webhook_outbox"
    events = ["order.paid"]
  }
}
`, db.URL)
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	db.Exec(t, `CREATE TABLE webhook_outbox (id bigserial PRIMARY KEY, type text, key text, tenant text,
		data jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`)
	ctx := context.Background()
	code, out, errOut := walhook(ctx, "validate", "-c", path, "--db")
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		path + `:5:14: error: Outbox table: column event_type`,
		`Fix: ALTER TABLE "public"."webhook_outbox" RENAME COLUMN "type" TO event_type;`,
		`Fix: ALTER TABLE "public"."webhook_outbox" RENAME COLUMN "data" TO payload;`,
		path + `:5:14: warning: Outbox triggers: a caveat`,
		"walhook outbox init -c " + path,
		"2 error(s)",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("output lacks %q:\n%s", want, errOut)
		}
	}

	db.Exec(t, `ALTER TABLE "public"."webhook_outbox" RENAME COLUMN "type" TO event_type;
		ALTER TABLE "public"."webhook_outbox" RENAME COLUMN "data" TO payload`)
	code, out, errOut = walhook(ctx, "validate", "-c", path, "--db")
	if code != 0 || !strings.HasPrefix(out, "ok: 0 events") {
		t.Fatalf("after the fixes: exit %d:\n%s%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "Column event_type may be NULL") || strings.Contains(errOut, "error") {
		t.Errorf("want the nullable event_type as a warning:\n%s", errOut)
	}

	// The trigger fallback: a rule's table without its capture triggers.
	src += `event "contact.created" {
  table = "contacts"
  on    = ["insert"]
}
`
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = walhook(ctx, "validate", "-c", path, "--db")
	if code != 1 || !strings.Contains(errOut, "public.contacts has no trigger walhook_capture:") ||
		!strings.Contains(errOut, "walhook triggers install -c "+path) || !strings.Contains(errOut, path+":10:") {
		t.Errorf("capture triggers missing: exit %d:\n%s", code, errOut)
	}
	if code, _, errOut := walhook(ctx, "triggers", "install", "-c", path); code != 0 {
		t.Fatalf("triggers install: exit %d: %s", code, errOut)
	}
	if code, out, errOut := walhook(ctx, "validate", "-c", path, "--db"); code != 0 {
		t.Errorf("after triggers install: exit %d:\n%s%s", code, out, errOut)
	}
}
