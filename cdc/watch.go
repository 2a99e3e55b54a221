package cdc

import (
	"context"
	"fmt"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
)

// SlotView is a replication slot as Postgres sees it (pg_replication_slots),
// read on a normal connection, so it is right whether or not anyone
// streams from the slot.
type SlotView struct {
	// Exists is false when there is no slot by that name; the other
	// fields but Current are then zero.
	Exists bool
	Active bool
	// Current is the server's WAL position now (pg_current_wal_lsn(); the
	// replay position on a standby).
	Current LSN
	// Restart is restart_lsn: Postgres keeps the WAL from here on for the
	// slot. 0 when unknown (an invalidated slot).
	Restart LSN
	// Confirmed is confirmed_flush_lsn: decoding resumes after it.
	Confirmed LSN
	// WALStatus is wal_status: "reserved", "extended", "unreserved" or
	// "lost".
	WALStatus string
}

// RetainedBytes is the WAL the slot makes Postgres keep (Current -
// Restart); 0 when unknown.
func (v SlotView) RetainedBytes() int64 { return lsnDiff(v.Current, v.Restart) }

// LagBytes is the WAL written since the slot's confirmed position (Current
// - Confirmed); 0 when unknown.
func (v SlotView) LagBytes() int64 { return lsnDiff(v.Current, v.Confirmed) }

func lsnDiff(to, from LSN) int64 {
	if from == 0 || to <= from {
		return 0
	}
	return int64(to - from)
}

// ReadSlotView reads slot from pg_replication_slots on conn.
func ReadSlotView(ctx context.Context, conn *pgx.Conn, slot string) (SlotView, error) {
	var v SlotView
	var current string
	var active *bool
	var restart, confirmed, walStatus *string
	err := conn.QueryRow(ctx, `SELECT
		(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text,
		s.active, s.restart_lsn::text, s.confirmed_flush_lsn::text, s.wal_status
		FROM (SELECT 1) one LEFT JOIN pg_replication_slots s ON s.slot_name = $1`, slot).
		Scan(&current, &active, &restart, &confirmed, &walStatus)
	if err != nil {
		return v, fmt.Errorf("reading replication slot %s: %w", slot, err)
	}
	if v.Current, err = pglogrepl.ParseLSN(current); err != nil {
		return v, fmt.Errorf("parsing the current WAL position %q: %w", current, err)
	}
	if active == nil {
		return v, nil
	}
	v.Exists, v.Active = true, *active
	if walStatus != nil {
		v.WALStatus = *walStatus
	}
	for _, f := range []struct {
		text *string
		lsn  *LSN
		name string
	}{{restart, &v.Restart, "restart_lsn"}, {confirmed, &v.Confirmed, "confirmed_flush_lsn"}} {
		if f.text == nil {
			continue
		}
		if *f.lsn, err = pglogrepl.ParseLSN(*f.text); err != nil {
			return v, fmt.Errorf("parsing %s %q of slot %s: %w", f.name, *f.text, slot, err)
		}
	}
	return v, nil
}

// TablesView is what the catalog says now about the configured tables and
// the publication: which table each configured name resolves to, and
// which tables (by oid, as Postgres keeps them) the publication holds.
type TablesView struct {
	// PublicationExists is false when there is no such publication.
	PublicationExists bool
	// Configured maps each configured "schema.table" to the oid of the
	// table by that name now; 0 when there is none.
	Configured map[string]uint32
	// Published holds the oids of the publication's tables.
	Published map[uint32]bool
	// Names is the current "schema.table" of the publication's tables and
	// of the oids asked about; an oid asked about that is missing was
	// dropped.
	Names map[uint32]string
}

// ReadTables reads the tables view of publication and the configured
// tables, naming the relations oids too (tables seen before). It reads
// everything in one snapshot, so that a table dropped and created again
// meanwhile is seen either before or after, never half.
func ReadTables(ctx context.Context, conn *pgx.Conn, publication string, tables []string, oids []uint32) (TablesView, error) {
	v := TablesView{Configured: map[string]uint32{}, Published: map[uint32]bool{}, Names: map[uint32]string{}}
	schemas, names := make([]string, len(tables)), make([]string, len(tables))
	for i, t := range tables {
		var err error
		if schemas[i], names[i], err = splitTable(t); err != nil {
			return v, err
		}
	}
	err := pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT t.name, coalesce(c.oid, 0)
			FROM unnest($1::text[], $2::text[], $3::text[]) AS t(name, nsp, rel)
			LEFT JOIN pg_namespace n ON n.nspname = t.nsp
			LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = t.rel AND c.relkind IN ('r', 'p')`,
			tables, schemas, names)
		if err != nil {
			return fmt.Errorf("looking up the configured tables: %w", err)
		}
		var name string
		var oid uint32
		if _, err := pgx.ForEachRow(rows, []any{&name, &oid}, func() error { v.Configured[name] = oid; return nil }); err != nil {
			return fmt.Errorf("looking up the configured tables: %w", err)
		}
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)`, publication).Scan(&v.PublicationExists); err != nil {
			return fmt.Errorf("looking up publication %s: %w", publication, err)
		}
		rows, err = tx.Query(ctx, `SELECT c.oid, n.nspname || '.' || c.relname, true
			FROM pg_publication p JOIN pg_publication_rel pr ON pr.prpubid = p.oid
			JOIN pg_class c ON c.oid = pr.prrelid JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE p.pubname = $1
			UNION ALL
			SELECT c.oid, n.nspname || '.' || c.relname, false
			FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE c.oid = ANY ($2::oid[])`, publication, oids)
		if err != nil {
			return fmt.Errorf("listing the tables of publication %s: %w", publication, err)
		}
		var published bool
		_, err = pgx.ForEachRow(rows, []any{&oid, &name, &published}, func() error {
			v.Names[oid] = name
			if published {
				v.Published[oid] = true
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("listing the tables of publication %s: %w", publication, err)
		}
		return nil
	})
	return v, err
}

// CountRows counts the rows of table ("schema.table"), stopping at limit:
// more reports that there are more.
func CountRows(ctx context.Context, conn *pgx.Conn, table string, limit int64) (n int64, more bool, err error) {
	schema, name, err := splitTable(table)
	if err != nil {
		return 0, false, err
	}
	q := "SELECT count(*) FROM (SELECT FROM " + pgx.Identifier{schema, name}.Sanitize() + " LIMIT $1) r"
	if err := conn.QueryRow(ctx, q, limit+1).Scan(&n); err != nil {
		return 0, false, fmt.Errorf("counting the rows of %s: %w", table, err)
	}
	if n > limit {
		return limit, true, nil
	}
	return n, false, nil
}

// CurrentLSN is the server's WAL position now.
func CurrentLSN(ctx context.Context, conn *pgx.Conn) (LSN, error) {
	var text string
	if err := conn.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&text); err != nil {
		return 0, fmt.Errorf("reading the current WAL position: %w", err)
	}
	return pglogrepl.ParseLSN(text)
}

// RepublishTables makes publication publish the configured tables again,
// as Prepare does at the start of every session: for a table dropped and
// re-created, or removed from the publication, while walhook streams. uses
// says what the rules want of each table (ReaderConfig.Uses), so a table
// without a replica identity goes where the application's writes still work.
func RepublishTables(ctx context.Context, conn *pgx.Conn, publication string, tables []string, uses map[string]TableUse) error {
	return ensurePublication(ctx, conn, ReaderConfig{Publication: publication, Tables: tables, Uses: uses})
}
