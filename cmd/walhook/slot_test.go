package main

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walhook/walhook/internal/testkit"
	"github.com/walhook/walhook/testenv"
)

// readEvent makes every contact arrive again as a read event when a
// backfill runs.
const readEvent = `
event "contact.synced" {
  table = "contacts"
  on    = ["read"]
}
`

// insertContacts commits n contacts in one transaction and returns their ids.
func insertContacts(t *testing.T, db *testenv.DB, n int) []int64 {
	t.Helper()
	rows, err := db.Pool.Query(context.Background(), `INSERT INTO contacts (organization_id, first_name) SELECT 1, 'c' FROM generate_series(1, $1) RETURNING id`, n)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// waitExit waits for the daemon to exit by itself and returns its exit
// status and its log, with the JSON escapes of quotes undone.
func (d *daemon) waitExit(t *testing.T) (code int, log string) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case err := <-done:
		log = strings.ReplaceAll(d.log.String(), `\"`, `"`)
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode(), log
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, log
	case <-time.After(testkit.Timeout):
		_ = d.cmd.Process.Kill()
		<-done
		t.Fatalf("walhook went on; want it to stop by itself. Log:\n%s", d.log)
		return 0, ""
	}
}

// dropSlotOf ends the slot's walsender and drops the slot, as a DBA
// would, retrying while walhook takes the slot again.
func dropSlotOf(t *testing.T, db *testenv.DB, slot string) {
	t.Helper()
	testkit.Eventually(t, "dropping slot "+slot, func() bool {
		_, _ = db.Pool.Exec(context.Background(), `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL`, slot)
		_, err := db.Pool.Exec(context.Background(), `SELECT pg_drop_replication_slot($1)`, slot)
		return err == nil
	})
}

func hasSlot(t *testing.T, db *testenv.DB, slot string) bool {
	t.Helper()
	var n int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// wantGapLog checks that walhook exited 1 with an error naming the slot,
// the lost changes and the way out.
func wantGapLog(t *testing.T, d *daemon, slot, reason string) {
	t.Helper()
	if code, _ := d.waitExit(t); code != 1 {
		t.Errorf("walhook exited %d, want 1", code)
	}
	log := d.log.String()
	for _, want := range []string{"replication slot " + slot + " cannot go on", reason, "the last position walhook confirmed", "are not delivered by the stream", "walhook slot recreate -c <config> [--backfill]"} {
		if !strings.Contains(log, want) {
			t.Errorf("walhook's log lacks %q:\n%s", want, log)
		}
	}
}

// TestSlotLostThroughTheBinary: a slot dropped while walhook runs or while
// it is stopped, or its publication dropped, stops walhook with exit 1 and
// an error naming the gap; status and validate --db say the same; walhook
// slot recreate is the way out, and with --backfill the table's rows
// arrive as read events; rows flow again after it.
func TestSlotLostThroughTheBinary(t *testing.T) {
	cases := []struct {
		name     string
		lose     func(t *testing.T, db *testenv.DB, slot string, d *daemon) *daemon // returns the daemon to watch exit
		reason   string
		backfill bool
	}{
		{"dropped while running", func(t *testing.T, db *testenv.DB, slot string, d *daemon) *daemon {
			dropSlotOf(t, db, slot)
			return d
		}, "the slot does not exist any more", true},
		{"dropped while stopped", func(t *testing.T, db *testenv.DB, slot string, d *daemon) *daemon {
			d.stop(t)
			dropSlotOf(t, db, slot)
			return nil
		}, "the slot does not exist any more", false},
		{"publication dropped", func(t *testing.T, db *testenv.DB, slot string, d *daemon) *daemon {
			db.Exec(t, `DROP PUBLICATION `+slot)
			insertContacts(t, db, 1) // decoding it fails: its publication is gone
			return d
		}, "does not exist", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			db, s, url := processTest(t, 0)
			slot := testenv.Name(t, "slot")
			cfg := writeConfig(t, db, slot, url, s.secret, readEvent)
			d := startDaemon(t, cfg)
			waitSlot(t, db, slot)
			before := insertContacts(t, db, 3)
			waitDelivered(t, s, before)

			if watch := c.lose(t, db, slot, d); watch == nil {
				d = startDaemon(t, cfg)
			}
			lost := insertContacts(t, db, 5) // committed while the slot or publication is gone
			wantGapLog(t, d, slot, c.reason)
			if c.name != "publication dropped" && hasSlot(t, db, slot) {
				t.Fatal("walhook re-created the lost slot")
			}

			ctx := context.Background()
			code, out, errOut := walhook(ctx, "status", "-c", cfg)
			if code != 0 || !strings.Contains(out, "problem: replication slot "+slot+" cannot go on") {
				t.Errorf("status: exit %d\n%s%s", code, out, errOut)
			}
			code, _, errOut = walhook(ctx, "validate", "-c", cfg, "--db")
			if code != 1 || !strings.Contains(errOut, "Changes were lost to the replication slot") || !strings.Contains(errOut, "walhook slot recreate") {
				t.Errorf("validate --db: exit %d\n%s", code, errOut)
			}

			args := []string{"slot", "recreate", "-c", cfg, "--yes"}
			if c.backfill {
				args = append(args, "--backfill")
			}
			code, out, errOut = walhook(ctx, args...)
			if code != 0 || !strings.Contains(out, "created replication slot "+slot) || !strings.Contains(out, "lost: changes committed after ") {
				t.Fatalf("slot recreate: exit %d\n%s%s", code, out, errOut)
			}
			if c.backfill && !strings.Contains(out, "queued backfill bf_") {
				t.Errorf("slot recreate --backfill queued no backfill:\n%s", out)
			}
			if code, out, errOut := walhook(ctx, "validate", "-c", cfg, "--db"); code != 0 {
				t.Errorf("validate --db after recreate: exit %d\n%s%s", code, out, errOut)
			}

			d = startDaemon(t, cfg)
			waitSlot(t, db, slot)
			after := insertContacts(t, db, 3)
			waitDelivered(t, s, after)
			if c.backfill {
				waitDelivered(t, s, lost) // as read events of the backfill
			} else if m := s.missing(lost); len(m) != len(lost) {
				t.Errorf("rows committed during the gap arrived without a backfill: %d of %d", len(lost)-len(m), len(lost))
			}
			d.stop(t)
		})
	}
}

// TestTeardownOfAnotherDatabaseLeavesTheSlot: teardown and status with the
// config of another database naming the same slot leave it and say whose
// it is; the walhook that owns it goes on without a gap.
func TestTeardownOfAnotherDatabaseLeavesTheSlot(t *testing.T) {
	db, s, url := processTest(t, 0)
	slot := testenv.Name(t, "slot")
	cfg := writeConfig(t, db, slot, url, s.secret, "")
	d := startDaemon(t, cfg)
	waitSlot(t, db, slot)
	first := insertContacts(t, db, 3)
	waitDelivered(t, s, first)
	d.stop(t)

	other := testenv.NewDB(t)
	otherCfg := writeConfig(t, other, slot, url, s.secret, "")
	ctx := context.Background()
	code, out, errOut := walhook(ctx, "status", "-c", otherCfg)
	if code != 0 || !strings.Contains(out, "slot "+slot+": belongs to database "+db.Name+", not this config's") {
		t.Errorf("status with the other database's config: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = walhook(ctx, "teardown", "-c", otherCfg, "--yes")
	if code != 0 || !strings.Contains(out, "left replication slot "+slot+": it belongs to database "+db.Name+", not "+other.Name) {
		t.Errorf("teardown with the other database's config: exit %d\n%s%s", code, out, errOut)
	}
	if !hasSlot(t, db, slot) {
		t.Fatal("teardown with another database's config dropped the slot")
	}

	between := insertContacts(t, db, 3) // committed while walhook is stopped
	d = startDaemon(t, cfg)
	after := insertContacts(t, db, 3)
	waitDelivered(t, s, append(between, after...))
	d.stop(t)
}
