package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/cdc/outbox"
	"github.com/walhook/walhook/testenv"
)

// runBinary runs the built walhook with args and returns its exit status,
// stdout and stderr.
func runBinary(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("walhook %s: %v", strings.Join(args, " "), err)
	}
	return code, out.String(), errOut.String()
}

// wantLines checks that out holds every line of want and none of unwanted.
func wantLines(t *testing.T, what, out string, want, unwanted []string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, out)
		}
	}
	for _, u := range unwanted {
		if strings.Contains(out, u) {
			t.Errorf("%s has %q:\n%s", what, u, out)
		}
	}
}

// TestTeardownTriggersThroughTheBinary: in polling mode with the trigger
// fallback, `walhook teardown` drops no slot or publication (a slot and a
// publication of the configured names in the same database stay: they
// are not this config's), leaves the capture triggers, the notify trigger
// and the outbox table and lists them with the way to remove each;
// `--triggers` removes every walhook trigger writing into the outbox (on
// the rules' tables and on another table) and their functions, leaves
// the outbox table and its rows, and the application's writes go on
// working without reaching the outbox.
func TestTeardownTriggersThroughTheBinary(t *testing.T) {
	ctx := context.Background()
	// A logical-mode walhook of the same database uses the names this
	// polling config has.
	db, name, cfg := teardownConfig(t, `
source "postgres" {
  url         = %q
  mode        = "outbox"
  slot        = %q
  publication = %[2]q
  outbox {
    table = "public.webhook_outbox"
  }
}
event "contact.created" {
  table = "contacts"
  on    = ["insert"]
}
`)
	for _, args := range [][]string{{"outbox", "init", "-c", cfg}, {"triggers", "install", "-c", cfg}} {
		if code, out, errOut := runBinary(t, args...); code != 0 {
			t.Fatalf("walhook %s: exit %d\n%s%s", args[0], code, out, errOut)
		}
	}
	// deals is no rule's table, but its trigger writes into this outbox.
	deals, err := outbox.TriggersSQL("public.webhook_outbox", []string{"public.deals"})
	if err != nil {
		t.Fatal(err)
	}
	db.Exec(t, deals)
	outboxRows := func() int {
		t.Helper()
		return countOf(t, db, `SELECT count(*) FROM webhook_outbox`)
	}
	writes := func() {
		t.Helper()
		db.Exec(t, `INSERT INTO contacts (organization_id, first_name) VALUES (1, 'a'), (1, 'b')`)
		db.Exec(t, `UPDATE contacts SET first_name = 'c' WHERE first_name = 'a'`)
		db.Exec(t, `INSERT INTO deals (organization_id, title, stage, amount) VALUES (1, 'd', 'new', 1)`)
		db.Exec(t, `DELETE FROM deals`)
	}
	writes()
	captured := outboxRows()
	if captured != 5 {
		t.Fatalf("%d rows in the outbox after 5 captured changes", captured)
	}
	kept := func(when string) {
		t.Helper()
		if !hasSlot(t, db, name) || !publicationExists(t, db, name) {
			t.Fatalf("%s: slot %s kept %v, publication kept %v; they are another config's", when, name, hasSlot(t, db, name), publicationExists(t, db, name))
		}
	}
	noSlot := `no replication slot or publication to drop: source mode "outbox" polls public.webhook_outbox without one`

	code, out, errOut := runBinary(t, "teardown", "-c", cfg)
	wantLines(t, "teardown", out, []string{
		noSlot,
		"nothing to drop",
		"left capture triggers walhook_capture and walhook_capture_truncate on public.contacts, public.deals: every change of these tables is still written into an outbox table",
		"remove them with `walhook teardown -c " + cfg + " --triggers` (or `walhook triggers uninstall -c " + cfg + "`)",
		`left trigger walhook_notify on public.webhook_outbox (it runs "public"."webhook_outbox_notify"()): remove it with ` + "`walhook teardown -c " + cfg + " --triggers`",
		"left outbox table public.webhook_outbox (5 rows): it holds the application's events, so teardown never drops it; drop it yourself after removing the capture triggers",
		`DROP TABLE "public"."webhook_outbox";`,
	}, []string{"dropped"})
	if code != 0 {
		t.Fatalf("teardown: exit %d\n%s", code, errOut)
	}
	kept("after teardown")
	writes()
	if n := outboxRows(); n != 2*captured {
		t.Fatalf("%d rows in the outbox after teardown; want %d, the triggers still capturing", n, 2*captured)
	}

	// Without --yes and no terminal: the plan names the triggers and the
	// functions, and nothing is removed.
	code, _, errOut = runBinary(t, "teardown", "-c", cfg, "--triggers")
	wantLines(t, "teardown --triggers without --yes", errOut, []string{
		"teardown would drop capture triggers walhook_capture and walhook_capture_truncate on public.contacts, public.deals, trigger walhook_notify on public.webhook_outbox and functions " +
			`"public"."webhook_outbox_capture"(), "public"."webhook_outbox_notify"(); stdin is not a terminal, so pass --yes to confirm`,
	}, nil)
	if code != 1 || walhookTriggers(t, db) != 5 {
		t.Fatalf("teardown --triggers without --yes: exit %d, %d walhook triggers left, want all 5", code, walhookTriggers(t, db))
	}
	// On a terminal the plan also says what stays.
	var prompt, promptErr bytes.Buffer
	a := testApp(&prompt, &promptErr)
	a.stdin, a.stdinTerminal = strings.NewReader("no\n"), true
	if code := execute(ctx, []string{"teardown", "-c", cfg, "--triggers"}, a); code != 1 {
		t.Fatalf("teardown --triggers answered no: exit %d\n%s", code, promptErr.String())
	}
	wantLines(t, "the confirmation", prompt.String(), []string{"This drops capture triggers", "It leaves outbox table public.webhook_outbox (10 rows).\nType \"yes\""}, nil)

	code, out, errOut = runBinary(t, "teardown", "-c", cfg, "--triggers", "--yes")
	wantLines(t, "teardown --triggers", out, []string{
		noSlot,
		"removed capture triggers walhook_capture and walhook_capture_truncate on public.contacts, public.deals",
		"removed trigger walhook_notify on public.webhook_outbox",
		`dropped functions "public"."webhook_outbox_capture"(), "public"."webhook_outbox_notify"()`,
		"left outbox table public.webhook_outbox (10 rows): it holds the application's events, so teardown never drops it; drop it yourself once nothing writes into it: " + `DROP TABLE "public"."webhook_outbox";`,
	}, []string{"left capture triggers", "left trigger"})
	if code != 0 {
		t.Fatalf("teardown --triggers: exit %d\n%s", code, errOut)
	}
	kept("after teardown --triggers")
	if n := walhookTriggers(t, db); n != 0 {
		t.Errorf("%d walhook triggers left after teardown --triggers", n)
	}
	if n := countOf(t, db, `SELECT count(*) FROM pg_proc WHERE proname LIKE 'webhook_outbox%'`); n != 0 {
		t.Errorf("%d trigger functions left", n)
	}
	writes() // no trigger function error: nothing runs the dropped functions
	db.Exec(t, `TRUNCATE invoices, deals`)
	if n := outboxRows(); n != 2*captured {
		t.Errorf("%d rows in the outbox after teardown --triggers; want its %d rows kept and no more captured", n, 2*captured)
	}

	code, out, _ = runBinary(t, "teardown", "-c", cfg, "--triggers", "--yes")
	wantLines(t, "a second teardown --triggers", out, []string{noSlot, "nothing to drop", "left outbox table public.webhook_outbox (10 rows)"}, nil)
	if code != 0 {
		t.Errorf("a second teardown --triggers: exit %d", code)
	}
}

// walhookTriggers counts the triggers walhook installs in db.
func walhookTriggers(t *testing.T, db *testenv.DB) int {
	t.Helper()
	return countOf(t, db, `SELECT count(*) FROM pg_trigger WHERE tgname IN ('walhook_capture', 'walhook_capture_truncate', 'walhook_notify')`)
}

// publicationExists says whether db has publication pub.
func publicationExists(t *testing.T, db *testenv.DB, pub string) bool {
	t.Helper()
	return countOf(t, db, `SELECT count(*) FROM pg_publication WHERE pubname = $1`, pub) > 0
}

// countOf runs a count query on db.
func countOf(t *testing.T, db *testenv.DB, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := db.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// teardownConfig is a database where a logical-mode walhook has slot and
// publication name, and a config file for it: source (a format of the
// database URL and name) and an endpoint.
func teardownConfig(t *testing.T, source string) (db *testenv.DB, name, cfg string) {
	t.Helper()
	if testing.Short() {
		t.Skip("process test")
	}
	t.Parallel()
	db = testenv.NewDB(t)
	name = testenv.Name(t, "slot")
	if err := cdc.Prepare(context.Background(), db.URL, cdc.ReaderConfig{Slot: name, Publication: name, Tables: []string{"public.contacts"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cdc.Teardown(context.Background(), db.URL, name, name) })
	cfg = filepath.Join(t.TempDir(), "walhook.hcl")
	src := fmt.Sprintf(source, db.URL, name) + `
endpoint "app" {
  url    = "http://127.0.0.1:1/hook"
  events = ["*"]
  secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
}
`
	if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return db, name, cfg
}

// TestTeardownOutboxBySlot: in logical mode with an outbox block,
// teardown drops the slot and the publication and leaves the outbox table
// and its notify trigger, saying so; --triggers then removes the trigger
// and its function and still leaves the table and its row.
func TestTeardownOutboxBySlot(t *testing.T) {
	db, name, cfg := teardownConfig(t, `
source "postgres" {
  url         = %q
  slot        = %q
  publication = %[2]q
  outbox {
    table = "app.events"
  }
}
`)
	if code, out, errOut := runBinary(t, "outbox", "init", "-c", cfg); code != 0 {
		t.Fatalf("walhook outbox init: exit %d\n%s%s", code, out, errOut)
	}
	db.Exec(t, `INSERT INTO app.events (event_type, payload) VALUES ('order.paid', '{"id": 1}')`)

	code, out, errOut := runBinary(t, "teardown", "-c", cfg, "--yes")
	wantLines(t, "teardown", out, []string{
		"dropped replication slot " + name,
		"dropped publication " + name,
		"left trigger walhook_notify on app.events",
		"left outbox table app.events (1 row): it holds the application's events, so teardown never drops it; drop it yourself once nothing writes into it: " + `DROP TABLE "app"."events";`,
	}, []string{"capture triggers", "no replication slot"})
	if code != 0 || hasSlot(t, db, name) || publicationExists(t, db, name) {
		t.Fatalf("teardown: exit %d, slot left %v, publication left %v\n%s", code, hasSlot(t, db, name), publicationExists(t, db, name), errOut)
	}
	code, out, errOut = runBinary(t, "teardown", "-c", cfg, "--triggers", "--yes")
	wantLines(t, "teardown --triggers", out, []string{
		"replication slot " + name + " did not exist",
		"removed trigger walhook_notify on app.events",
		`dropped function "app"."events_notify"()`,
		"left outbox table app.events (1 row)",
	}, []string{"left trigger"})
	if code != 0 || walhookTriggers(t, db) != 0 {
		t.Fatalf("teardown --triggers: exit %d, %d walhook triggers left\n%s", code, walhookTriggers(t, db), errOut)
	}
	db.Exec(t, `INSERT INTO app.events (event_type, payload) VALUES ('order.paid', '{"id": 2}')`)
}
