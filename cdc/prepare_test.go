package cdc_test

import (
	"context"
	"errors"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/pgcluster"
	"github.com/walhook/walhook/internal/testkit"
	"github.com/walhook/walhook/testenv"
)

// TestSlotInUse runs two readers on one slot: the second reports the slot
// in use and takes over, without repeats, when the first stops.
func TestSlotInUse(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	cfg := testConfig(t, db, "public.contacts")
	cfg.MaxBackoff = 300 * time.Millisecond
	first := start(t, cfg, true)
	testkit.Await(t, "the first reader streaming", first.signals.Streaming)
	second := run(t, cfg, true)
	testkit.AwaitMatch(t, "the second reader to report the slot in use", second.signals.Interrupted, func(err string) bool {
		return strings.Contains(err, "in use by pid")
	})
	wantLog := "replication slot " + cfg.Slot + " is in use by pid "
	if logs := second.logs.String(); !strings.Contains(logs, wantLog) {
		t.Errorf("second reader's logs lack %q:\n%s", wantLog, logs)
	}
	if st := second.reader.Status(); st.Streaming {
		t.Errorf("second reader streaming while the first holds the slot: %+v", st)
	}

	insertContact(t, db, 1)
	first.sink.waitTransactions(t, 1)
	first.stop(t)
	insertContact(t, db, 2)
	got := second.sink.waitTransactions(t, 1)
	if ids := contactIDs(got); !equalIDs(ids, 2) {
		t.Fatalf("second reader got contacts %v, want [2]", ids)
	}
	if len(first.sink.transactions()) != 1 {
		t.Errorf("first reader got %d transactions after stopping", len(first.sink.transactions()))
	}
}

// TestPrerequisiteMessages checks the errors for a role without the
// REPLICATION privilege and for a server without wal_level=logical.
func TestPrerequisiteMessages(t *testing.T) {
	t.Parallel()
	t.Run("privilege", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		db := testenv.NewDB(t)
		role := testenv.Name(t, "role")
		db.Exec(t, `CREATE ROLE `+role+` LOGIN`)
		t.Cleanup(func() { _, _ = db.Pool.Exec(context.Background(), `DROP ROLE IF EXISTS `+role) })
		connCfg, err := pgx.ParseConfig(db.URL)
		if err != nil {
			t.Fatal(err)
		}
		connCfg.User = role
		conn, err := pgx.ConnectConfig(ctx, connCfg)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		err = cdc.CheckPrerequisites(ctx, conn)
		want := `role "` + role + `" has neither the REPLICATION privilege nor superuser: run ALTER ROLE ` + `"` + role + `" WITH REPLICATION;`
		if !errors.Is(err, cdc.ErrPrerequisite) || !strings.Contains(err.Error(), want) {
			t.Fatalf("CheckPrerequisites: %v\nwant it to contain %q", err, want)
		}

		// Run gives up with the same error instead of retrying forever.
		cfg := testConfig(t, db, "public.contacts")
		cfg.URL = strings.Replace(db.URL, "postgres@", role+"@", 1)
		runErr := cdc.NewReader(cfg).Run(ctx, newCollector(false))
		if !errors.Is(runErr, cdc.ErrPrerequisite) {
			t.Fatalf("Run as %s: %v", role, runErr)
		}

		db.Exec(t, `ALTER ROLE `+role+` WITH REPLICATION`)
		if err := cdc.CheckPrerequisites(ctx, conn); err != nil {
			t.Fatalf("after granting REPLICATION: %v", err)
		}
	})

	t.Run("wal_level", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if testenv.Shared(t).Dir() == "" {
			t.Skip("needs a throwaway cluster of its own")
		}
		cluster, err := pgcluster.Start(ctx, pgcluster.Options{Settings: map[string]string{"wal_level": "replica", "max_wal_senders": "2", "max_replication_slots": "2"}})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cluster.Stop() }()
		conn, err := pgx.Connect(ctx, cluster.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		err = cdc.CheckPrerequisites(ctx, conn)
		want := `wal_level is "replica" but logical replication needs "logical": run ALTER SYSTEM SET wal_level = logical; as a superuser and restart Postgres`
		if !errors.Is(err, cdc.ErrPrerequisite) || !strings.Contains(err.Error(), want) {
			t.Fatalf("CheckPrerequisites: %v\nwant it to contain %q", err, want)
		}
	})
}

// TestPrepareAndTeardown checks the publication follows the table list and
// Teardown removes slot and publication, refusing while a reader streams.
func TestPrepareAndTeardown(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	cfg := testConfig(t, db, "public.contacts")

	tables := func() []string {
		rows, err := db.Pool.Query(ctx, `SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = $1`, cfg.Publication)
		if err != nil {
			t.Fatal(err)
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(names)
		return names
	}
	count := func(sql, name string) int {
		var n int
		if err := db.Pool.QueryRow(ctx, sql, name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	if err := cdc.Prepare(ctx, db.URL, cfg); err != nil {
		t.Fatal(err)
	}
	if got := tables(); !reflect.DeepEqual(got, []string{"public.contacts"}) {
		t.Errorf("publication tables %v", got)
	}
	cfg.Tables = []string{"deals", "public.invoices"}
	if err := cdc.Prepare(ctx, db.URL, cfg); err != nil {
		t.Fatal(err)
	}
	if got := tables(); !reflect.DeepEqual(got, []string{"public.deals", "public.invoices"}) {
		t.Errorf("publication tables after changing the list: %v", got)
	}
	cfg.Tables = []string{"public.missing"}
	if err := cdc.Prepare(ctx, db.URL, cfg); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("Prepare with a missing table: %v", err)
	}
	cfg.Tables = []string{"deals"}

	r := run(t, cfg, true)
	testkit.Await(t, "streaming", r.signals.Streaming)
	if err := cdc.Teardown(ctx, db.URL, cfg.Slot, cfg.Publication); err == nil || !strings.Contains(err.Error(), "in use by pid") {
		t.Errorf("Teardown while streaming: %v", err)
	}
	r.stop(t)
	if err := cdc.Teardown(ctx, db.URL, cfg.Slot, cfg.Publication); err != nil {
		t.Fatal(err)
	}
	if n := count(`SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1`, cfg.Slot); n != 0 {
		t.Errorf("slot still there")
	}
	if n := count(`SELECT count(*) FROM pg_publication WHERE pubname = $1`, cfg.Publication); n != 0 {
		t.Errorf("publication still there")
	}
	if err := cdc.Teardown(ctx, db.URL, cfg.Slot, cfg.Publication); err != nil {
		t.Errorf("Teardown of nothing: %v", err)
	}
}
