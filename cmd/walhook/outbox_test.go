package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/walhook/walhook/cdc/outbox"
	"github.com/walhook/walhook/testenv"
)

// TestTriggersInstallUninstall: `walhook triggers install` makes changes
// of the rules' tables land in the outbox as captured changes, and
// `uninstall` stops it, also on a table no rule reads any more, and drops
// the capture function.
func TestTriggersInstallUninstall(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	path := filepath.Join(t.TempDir(), "walhook.hcl")
	src := fmt.Sprintf(`
source "postgres" {
  url  = %q
  mode = "outbox"
  outbox {
    table = "app.outbox"
  }
}
event "contact.created" {
  table = "contacts"
  on    = ["insert"]
}
event "deal.created" {
  table = "deals"
  on    = ["insert"]
}
endpoint "app" {
  url    = "http://127.0.0.1:1/hook"
  events = ["*"]
  secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
}
`, db.URL)
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var out, errOut bytes.Buffer
	if code := execute(ctx, []string{"outbox", "init", "-c", path}, testApp(&out, &errOut)); code != 0 {
		t.Fatalf("outbox init: exit %d: %s", code, errOut.String())
	}
	out.Reset()
	if code := execute(ctx, []string{"triggers", "install", "-c", path, "--print"}, testApp(&out, &errOut)); code != 0 {
		t.Fatalf("triggers install --print: exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{`ON "public"."contacts"`, `ON "public"."deals"`, `"app"."outbox_capture"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("printed SQL lacks %s:\n%s", want, out.String())
		}
	}
	if code := execute(ctx, []string{"triggers", "install", "-c", path}, testApp(&out, &errOut)); code != 0 {
		t.Fatalf("triggers install: exit %d: %s", code, errOut.String())
	}
	captured := func() int {
		var n int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM app.outbox WHERE event_type = $1`, outbox.ChangeType).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	db.Exec(t, `INSERT INTO contacts (organization_id, first_name) VALUES (1, 'a'), (1, 'b')`)
	if n := captured(); n != 2 {
		t.Fatalf("%d captured changes after inserting 2 contacts", n)
	}
	// A table no rule reads any more, still capturing into this outbox.
	invoices, err := outbox.TriggersSQL("app.outbox", []string{"public.invoices"})
	if err != nil {
		t.Fatal(err)
	}
	db.Exec(t, invoices)
	out.Reset()
	if code := execute(ctx, []string{"triggers", "uninstall", "-c", path}, testApp(&out, &errOut)); code != 0 {
		t.Fatalf("triggers uninstall: exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "capture triggers removed from 3 tables") {
		t.Errorf("triggers uninstall said %q", out.String())
	}
	db.Exec(t, `INSERT INTO contacts (organization_id, first_name) VALUES (1, 'c')`)
	db.Exec(t, `INSERT INTO invoices (amount) VALUES (1)`)
	if n := captured(); n != 2 {
		t.Errorf("%d captured changes after uninstalling; want still 2", n)
	}
	if n := walhookTriggers(t, db); n != 1 { // the outbox table's walhook_notify
		t.Errorf("%d walhook triggers after uninstalling; want only walhook_notify", n)
	}
	var capture bool
	if err := db.Pool.QueryRow(ctx, `SELECT to_regproc('app.outbox_capture') IS NOT NULL`).Scan(&capture); err != nil || capture {
		t.Errorf("capture function left after uninstalling: %v (%v)", capture, err)
	}
}
