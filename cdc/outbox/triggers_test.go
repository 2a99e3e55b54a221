package outbox

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/walhook/walhook/testenv"
)

// outboxDB is an empty database with the outbox table app.outbox (made by
// TableSQL) and tables (id int PRIMARY KEY) in public, and a connection to
// it.
func outboxDB(t *testing.T, tables ...string) (*testenv.DB, *pgx.Conn) {
	t.Helper()
	db := testenv.NewEmptyDB(t)
	tableSQL, err := TableSQL("app.outbox")
	if err != nil {
		t.Fatal(err)
	}
	db.Exec(t, tableSQL)
	for _, table := range tables {
		db.Exec(t, "CREATE TABLE "+table+" (id int PRIMARY KEY)")
	}
	return db, db.Conn(t)
}

// TestCheckTriggers follows the trigger fallback's installation in a real
// database: capture triggers missing, installed, disabled and re-enabled
// with the fix given; the NOTIFY trigger dropped; capture triggers left
// behind in logical mode.
func TestCheckTriggers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, conn := outboxDB(t, "contacts", "deals")
	tables := []string{"public.contacts", "public.deals", "public.gone"}
	check := func(polling bool, want ...string) []Problem {
		t.Helper()
		problems, err := CheckTriggers(ctx, conn, TriggerCheck{Outbox: "app.outbox", Polling: polling, Captured: tables})
		if err != nil {
			t.Fatal(err)
		}
		if len(problems) != len(want) {
			t.Fatalf("%d problems, want %d: %v", len(problems), len(want), problems)
		}
		for i, w := range want {
			if !strings.Contains(problems[i].String(), w) {
				t.Errorf("problem %d = %q, want it to contain %q", i, problems[i], w)
			}
		}
		return problems
	}

	missing := check(true,
		"public.contacts has no trigger walhook_capture: its changes never reach the outbox",
		"public.contacts has no trigger walhook_capture_truncate",
		"public.deals has no trigger walhook_capture:",
		"public.deals has no trigger walhook_capture_truncate")
	if missing[0].Warning || !strings.Contains(missing[0].Fix, "walhook triggers install") {
		t.Errorf("a missing capture trigger: %+v", missing[0])
	}
	install, err := TriggersSQL("app.outbox", tables[:2])
	if err != nil {
		t.Fatal(err)
	}
	db.Exec(t, install)
	check(true)

	db.Exec(t, `ALTER TABLE contacts DISABLE TRIGGER walhook_capture`)
	disabled := check(true, "The trigger walhook_capture on public.contacts is disabled")
	db.Exec(t, disabled[0].Fix)
	check(true)

	db.Exec(t, `DROP TRIGGER walhook_notify ON app.outbox`)
	notify := check(true, "No trigger on app.outbox notifies walhook (channel walhook_outbox) of inserts")
	if !notify[0].Warning || !strings.Contains(notify[0].Fix, "walhook outbox init") {
		t.Errorf("a missing NOTIFY trigger: %+v", notify[0])
	}

	check(false,
		"public.contacts has walhook's capture triggers, but in logical mode",
		"public.deals has walhook's capture triggers")
}
