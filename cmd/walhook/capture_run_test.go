package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/walhook/walhook/testenv"
)

// nopkWrites runs the application's INSERT, UPDATE and DELETE on nopk and
// fails the test if Postgres refuses one.
func nopkWrites(t *testing.T, db *testenv.DB, ids ...int64) {
	t.Helper()
	for _, id := range ids {
		db.Exec(t, `INSERT INTO nopk VALUES ($1, 'a')`, id)
	}
	db.Exec(t, `UPDATE nopk SET v = 'b'`)
	db.Exec(t, `DELETE FROM nopk WHERE id = $1`, ids[0])
}

// TestRunBesideATableWithoutKey: walhook run captures the inserts of a
// table without a primary key whose rules want inserts only, while the
// application's UPDATE and DELETE on it keep working; with a rule that
// wants its updates, or a rule on a missing table, run stops at once and
// says what to do.
func TestRunBesideATableWithoutKey(t *testing.T) {
	db, s, url := processTest(t, 0)
	db.Exec(t, `CREATE TABLE nopk (id bigint, v text)`)
	slot := testenv.Name(t, "s")
	rule := func(table, on string) string {
		return fmt.Sprintf("event %q {\n  table = %q\n  on    = %s\n}\n", table+".changed", table, on)
	}

	cfg := writeConfig(t, db, slot, url, s.secret, rule("nopk", `["insert", "read"]`))
	d := startDaemon(t, cfg)
	waitSlot(t, db, slot)
	nopkWrites(t, db, 1001, 1002, 1003)
	waitDelivered(t, s, []int64{1001, 1002, 1003})
	d.stop(t)

	cfg = writeConfig(t, db, slot, url, s.secret, rule("nopk", `["insert", "update"]`))
	code, log := startDaemon(t, cfg).waitExit(t)
	if code == 0 {
		t.Errorf("walhook run exited 0, want an error")
	}
	for _, want := range []string{`table public.nopk (read by event "nopk.changed" (` + cfg + `:`, "has no primary key",
		"ALTER TABLE public.nopk REPLICA IDENTITY FULL;", `restrict its rules to on = ["insert", "truncate", "read"]`} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	nopkWrites(t, db, 1004)

	cfg = writeConfig(t, db, slot, url, s.secret, rule("gone", `["insert"]`))
	code, log = startDaemon(t, cfg).waitExit(t)
	if code == 0 {
		t.Errorf("walhook run exited 0, want an error")
	}
	if want := `table public.gone (read by event "gone.changed" (` + cfg + `:`; !strings.Contains(log, want) || !strings.Contains(log, "does not exist") {
		t.Errorf("log lacks %q ... does not exist:\n%s", want, log)
	}
}
