package cdc_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/testkit"
	"github.com/walhook/walhook/testenv"
)

// tableKinds are tables as applications create them, by how Postgres can
// identify their rows; usable says whether it accepts UPDATE and DELETE
// on them in a publication that publishes those.
var tableKinds = []struct {
	name, ddl string
	usable    bool
}{
	{"pk", `CREATE TABLE %[1]s (id int PRIMARY KEY, v text)`, true},
	{"nokey", `CREATE TABLE %[1]s (id int, v text)`, false},
	{"full", `CREATE TABLE %[1]s (id int, v text); ALTER TABLE %[1]s REPLICA IDENTITY FULL`, true},
	{"index", `CREATE TABLE %[1]s (id int NOT NULL, v text); CREATE UNIQUE INDEX %[1]s_id ON %[1]s (id);
		ALTER TABLE %[1]s REPLICA IDENTITY USING INDEX %[1]s_id`, true},
	{"nothing", `CREATE TABLE %[1]s (id int PRIMARY KEY, v text); ALTER TABLE %[1]s REPLICA IDENTITY NOTHING`, false},
	{"deferrable", `CREATE TABLE %[1]s (id int PRIMARY KEY DEFERRABLE, v text)`, false},
	{"partitioned", `CREATE TABLE %[1]s (id int, v text) PARTITION BY RANGE (id);
		CREATE TABLE %[1]s_p0 PARTITION OF %[1]s FOR VALUES FROM (0) TO (1000)`, false},
	{"partitioned_pk", `CREATE TABLE %[1]s (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
		CREATE TABLE %[1]s_p0 PARTITION OF %[1]s FOR VALUES FROM (0) TO (1000)`, true},
}

// ruleShapes are the on = [...] lists of rules.
var ruleShapes = [][]string{
	{"insert"}, {"update"}, {"delete"}, {"truncate"}, {"read"},
	{"insert", "read"}, {"insert", "truncate"}, {"insert", "truncate", "read"},
	{"insert", "update"}, {"insert", "delete"}, {"update", "delete"},
	{"insert", "update", "delete", "truncate", "read"},
}

// appWrites runs the application's INSERT, UPDATE and DELETE on table
// and returns the first error.
func appWrites(ctx context.Context, db *testenv.DB, table string) error {
	for _, sql := range []string{
		`INSERT INTO ` + table + ` VALUES (1, 'a'), (2, 'b')`,
		`UPDATE ` + table + ` SET v = 'c' WHERE id = 1`,
		`DELETE FROM ` + table + ` WHERE id = 2`,
	} {
		if _, err := db.Pool.Exec(ctx, sql); err != nil {
			return fmt.Errorf("%s: %w", sql, err)
		}
	}
	return nil
}

// members lists the tables publication names.
func members(t *testing.T, db *testenv.DB, publication string) []string {
	t.Helper()
	rows, err := db.Pool.Query(context.Background(), `SELECT pr.prrelid::regclass::text
		FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid WHERE p.pubname = $1 ORDER BY 1`, publication)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestApplicationWritesSurviveEveryRule: for every rule shape and every
// kind of table, once walhook has prepared its publications (or refused
// to), the application's INSERT, UPDATE and DELETE on the table succeed;
// a table is published with updates and deletes only when it has a
// usable replica identity; a refusal says what to do. Each kind walhook
// treats as unusable is checked to be one Postgres refuses an UPDATE of
// once it is published with updates.
func TestApplicationWritesSurviveEveryRule(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	conn := db.Conn(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*waitTimeout)
	defer cancel()
	for _, kind := range tableKinds {
		for _, ops := range ruleShapes {
			name := kind.name + "_" + strings.Join(ops, "_")
			t.Run(name, func(t *testing.T) {
				table := "t_" + name
				db.Exec(t, fmt.Sprintf(kind.ddl, table))
				cfg := cdc.ReaderConfig{URL: db.URL, Slot: "unused", Publication: "pub_" + name, Tables: []string{table},
					Uses: map[string]cdc.TableUse{"public." + table: {Ops: ops, By: []string{`event "e" (walhook.hcl:3)`}}}}
				err := cdc.EnsurePublication(ctx, conn, cfg)
				wantsOld := slices.Contains(ops, "update") || slices.Contains(ops, "delete")
				switch {
				case kind.usable:
					if err != nil {
						t.Fatalf("EnsurePublication: %v", err)
					}
					if got := members(t, db, cfg.Publication); !slices.Equal(got, []string{table}) {
						t.Errorf("publication %s holds %v, want [%s]", cfg.Publication, got, table)
					}
				case !wantsOld:
					if err != nil {
						t.Fatalf("EnsurePublication: %v", err)
					}
					if got := members(t, db, cfg.Publication); len(got) != 0 {
						t.Errorf("publication %s holds %v, want nothing", cfg.Publication, got)
					}
					if got := members(t, db, cdc.InsertsPublication(cfg.Publication)); !slices.Equal(got, []string{table}) {
						t.Errorf("inserts-only publication holds %v, want [%s]", got, table)
					}
				default:
					var ce *cdc.CaptureError
					if !errors.As(err, &ce) || !errors.Is(err, cdc.ErrPrerequisite) {
						t.Fatalf("EnsurePublication = %v, want a CaptureError", err)
					}
					for _, want := range []string{"table public." + table, `event "e" (walhook.hcl:3)`, "add a primary key",
						"REPLICA IDENTITY FULL;", `restrict its rules to on = ["insert", "truncate", "read"]`} {
						if !strings.Contains(err.Error(), want) {
							t.Errorf("error lacks %q: %v", want, err)
						}
					}
					if got := members(t, db, cfg.Publication); len(got) != 0 {
						t.Errorf("refused, but publication %s holds %v", cfg.Publication, got)
					}
				}
				if !kind.usable {
					// Postgres does refuse an UPDATE of this kind of table once published.
					probe := "probe_" + name
					db.Exec(t, `CREATE PUBLICATION `+probe+` FOR TABLE `+table)
					_, err := db.Pool.Exec(ctx, `UPDATE `+table+` SET v = v WHERE id = 1`)
					if err == nil || !strings.Contains(err.Error(), "replica identity") {
						t.Errorf("an UPDATE of the table published with updates = %v, want Postgres to refuse it", err)
					}
					db.Exec(t, `DROP PUBLICATION `+probe)
				}
				if err := appWrites(ctx, db, table); err != nil {
					t.Errorf("the application's writes fail: %v", err)
				}
			})
		}
	}
}

// TestInsertsOnlyCapture: a table without a primary key whose rules want
// inserts only is captured through the inserts-only publication, next to
// a table with a key captured with every operation; the application's
// UPDATE and DELETE of the first still work.
func TestInsertsOnlyCapture(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	db.Exec(t, `CREATE TABLE nopk (id int, v text)`)
	cfg := testConfig(t, db, "nopk", "contacts")
	cfg.Uses = map[string]cdc.TableUse{
		"public.nopk":     {Ops: []string{"insert", "read"}},
		"public.contacts": {Ops: []string{"insert", "update", "delete"}},
	}
	r := start(t, cfg, true)
	testkit.Await(t, "streaming", r.signals.Streaming)

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := appWrites(ctx, db, "nopk"); err != nil {
		t.Fatalf("the application's writes fail: %v", err)
	}
	db.Exec(t, `INSERT INTO contacts (organization_id, first_name, email) VALUES (1, 'a', 'a@example.com')`)
	db.Exec(t, `UPDATE contacts SET email = 'b@example.com' WHERE email = 'a@example.com'`)
	db.Exec(t, `TRUNCATE nopk`)
	txns := r.sink.waitTransactions(t, 4)
	var got []string
	for _, c := range flatten(txns) {
		got = append(got, describe(c))
	}
	want := []string{"insert public.nopk", "insert public.nopk", "insert public.contacts", "update public.contacts", "truncate public.nopk"}
	if !slices.Equal(got, want) {
		t.Errorf("changes %v, want %v", got, want)
	}
	if got := members(t, db, cdc.InsertsPublication(cfg.Publication)); !slices.Equal(got, []string{"nopk"}) {
		t.Errorf("inserts-only publication holds %v", got)
	}
}

// TestOlderPublicationHeldTableWithoutKey: a publication that holds a
// table without a key (an older walhook put it there, and the
// application's UPDATE fails) is mended by Prepare: an insert-only table
// moves to the inserts-only publication; a table whose rules want updates
// is taken out and Prepare refuses, saying so. Either way the
// application's writes work again.
func TestOlderPublicationHeldTableWithoutKey(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	db.Exec(t, `CREATE TABLE nopk (id int, v text); CREATE TABLE nopk2 (id int, v text)`)
	cfg := testConfig(t, db, "nopk", "contacts")
	db.Exec(t, `CREATE PUBLICATION `+cfg.Publication+` FOR TABLE nopk, contacts`)
	if err := appWrites(ctx, db, "nopk"); err == nil || !strings.Contains(err.Error(), "does not have a replica identity") {
		t.Fatalf("before: the application's writes = %v, want Postgres to refuse the UPDATE", err)
	}

	cfg.Uses = map[string]cdc.TableUse{"public.nopk": {Ops: []string{"insert"}}}
	if err := cdc.Prepare(ctx, "", cfg); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	if got := members(t, db, cfg.Publication); !slices.Equal(got, []string{"contacts"}) {
		t.Errorf("publication holds %v, want [contacts]", got)
	}
	if got := members(t, db, cdc.InsertsPublication(cfg.Publication)); !slices.Equal(got, []string{"nopk"}) {
		t.Errorf("inserts-only publication holds %v, want [nopk]", got)
	}
	if err := appWrites(ctx, db, "nopk"); err != nil {
		t.Errorf("after: the application's writes fail: %v", err)
	}

	db.Exec(t, `ALTER PUBLICATION `+cfg.Publication+` ADD TABLE nopk2`)
	cfg.Tables = []string{"nopk", "nopk2", "contacts"}
	cfg.Uses["public.nopk2"] = cdc.TableUse{Ops: []string{"update"}, By: []string{`event "nopk2.changed" (walhook.hcl:9)`}}
	err := cdc.Prepare(ctx, "", cfg)
	for _, want := range []string{`table public.nopk2 (read by event "nopk2.changed" (walhook.hcl:9))`, "holds it now", "walhook run takes it out",
		"ALTER TABLE public.nopk2 REPLICA IDENTITY FULL;"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Prepare = %v, want an error with %q", err, want)
		}
	}
	if got := members(t, db, cfg.Publication); !slices.Equal(got, []string{"contacts"}) {
		t.Errorf("publication holds %v after the refusal, want [contacts]", got)
	}
	if err := appWrites(ctx, db, "nopk2"); err != nil {
		t.Errorf("after the refusal: the application's writes fail: %v", err)
	}

	cfg.Tables = []string{"nopk"}
	if err := cdc.Prepare(ctx, "", cfg); err != nil {
		t.Fatalf("Prepare with the table without a key only: %v", err)
	}
	if got := members(t, db, cfg.Publication); len(got) != 0 {
		t.Errorf("publication holds %v, want nothing", got)
	}
}

// TestMissingTableStopsReader: a rule on a table that does not exist stops
// the reader at once with the table and the rule named, instead of a
// reconnection loop in which no table streams.
func TestMissingTableStopsReader(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	cfg := testConfig(t, db, "contacts", "public.missing")
	cfg.Uses = map[string]cdc.TableUse{"public.missing": {Ops: []string{"insert"}, By: []string{`event "m" (walhook.hcl:7)`}}}
	r := run(t, cfg, true)
	select {
	case err := <-r.done:
		r.done <- nil
		for _, want := range []string{`table public.missing (read by event "m" (walhook.hcl:7)) does not exist`, "create it"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Run = %v, want an error with %q", err, want)
			}
		}
		if !errors.Is(err, cdc.ErrPrerequisite) {
			t.Errorf("Run = %v, want an ErrPrerequisite", err)
		}
	case <-r.signals.Interrupted:
		t.Fatal("the reader retries instead of stopping")
	case <-time.After(waitTimeout):
		t.Fatal("Run did not return")
	}
}

// TestInsertsPublicationNewerThanSlot: on a slot created before the
// inserts-only publication existed, Prepare refuses a table that needs it
// (Postgres 15 cannot decode through a publication newer than the slot's
// position) but leaves the application's writes working; once the slot
// has moved past the publication, the table is captured.
func TestInsertsPublicationNewerThanSlot(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	db.Exec(t, `CREATE TABLE nopk (id int, v text)`)
	cfg := testConfig(t, db, "contacts")
	// An older walhook: its publication, then its slot, no companion.
	db.Exec(t, `CREATE PUBLICATION `+cfg.Publication+` FOR TABLE contacts`)
	db.Exec(t, `SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, cfg.Slot)

	withNopk := cfg
	withNopk.Tables = []string{"contacts", "nopk"}
	withNopk.Uses = map[string]cdc.TableUse{"public.nopk": {Ops: []string{"insert"}}}
	err := cdc.Prepare(ctx, "", withNopk)
	for _, want := range []string{"table public.nopk has no replica identity", "publication " + cdc.InsertsPublication(cfg.Publication),
		"restart_lsn past", "give the table a primary key"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Prepare = %v, want an error with %q", err, want)
		}
	}
	if err := appWrites(ctx, db, "nopk"); err != nil {
		t.Errorf("the application's writes fail: %v", err)
	}

	// The way out: run without the rule until the slot has moved on.
	r := start(t, cfg, true)
	testkit.Await(t, "streaming", r.signals.Streaming)
	for i := 0; ; i++ {
		db.Exec(t, `INSERT INTO contacts (organization_id, first_name) VALUES (1, $1)`, fmt.Sprint(i))
		db.Exec(t, `CHECKPOINT`) // logs the running transactions the slot's restart_lsn moves to
		waitConfirmed(t, db, cfg.Slot, currentLSN(t, db))
		if err = cdc.Prepare(ctx, "", withNopk); err == nil || i == 50 {
			break
		}
	}
	if err != nil {
		t.Fatalf("Prepare once the slot moved on: %v", err)
	}
	r.stop(t)
	r = run(t, withNopk, true)
	testkit.Await(t, "streaming", r.signals.Streaming)
	db.Exec(t, `INSERT INTO nopk VALUES (7, 'x')`)
	db.Exec(t, `UPDATE nopk SET v = 'y'`)
	for _, tx := range r.sink.waitTransactions(t, 1) {
		for _, c := range tx.Changes {
			if describe(c) != "insert public.nopk" {
				t.Errorf("unexpected change %s", describe(c))
			}
		}
	}
}

// TestInsertsPublicationName: the companion's name fits in a Postgres
// identifier, cut on a character boundary.
func TestInsertsPublicationName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ pub, want string }{
		{"walhook", "walhook_inserts"},
		{strings.Repeat("a", 63), strings.Repeat("a", 55) + "_inserts"},
		{strings.Repeat("a", 54) + "é", strings.Repeat("a", 54) + "_inserts"},
	} {
		if got := cdc.InsertsPublication(tc.pub); got != tc.want || len(got) > 63 {
			t.Errorf("InsertsPublication(%q) = %q, want %q", tc.pub, got, tc.want)
		}
	}
}
