package cdc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrPrerequisite marks a server setting or privilege that logical
// replication needs and that only an administrator can change; the Reader
// does not retry it.
var ErrPrerequisite = errors.New("logical replication prerequisite not met")

// CheckPrerequisites checks that the server has wal_level=logical and the
// connected role may replicate (REPLICATION or superuser). Its errors wrap
// ErrPrerequisite and say what to change.
func CheckPrerequisites(ctx context.Context, conn *pgx.Conn) error {
	var walLevel, role string
	var canReplicate bool
	err := conn.QueryRow(ctx, `SELECT current_setting('wal_level'), current_user,
		(SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user)`).Scan(&walLevel, &role, &canReplicate)
	if err != nil {
		return fmt.Errorf("checking wal_level and the replication privilege: %w", err)
	}
	var problems []string
	if walLevel != "logical" {
		problems = append(problems, fmt.Sprintf("wal_level is %q but logical replication needs \"logical\": run ALTER SYSTEM SET wal_level = logical; as a superuser and restart Postgres", walLevel))
	}
	if !canReplicate {
		problems = append(problems, fmt.Sprintf("role %q has neither the REPLICATION privilege nor superuser: run ALTER ROLE %s WITH REPLICATION; as a superuser", role, pgx.Identifier{role}.Sanitize()))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrPrerequisite, strings.Join(problems, "; "))
	}
	return nil
}

// Prepare checks the prerequisites, then creates the publications (or sets
// their tables to cfg.Tables, see ensurePublication) and the permanent pgoutput slot if missing.
// url overrides cfg.URL when not empty.
func Prepare(ctx context.Context, url string, cfg ReaderConfig) error {
	if url != "" {
		cfg.URL = url
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, cfg.URL)
	if err != nil {
		return fmt.Errorf("connecting to the source database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = prepare(ctx, conn, cfg)
	return err
}

// prepare does Prepare's work on conn and returns the slot's
// confirmed_flush_lsn.
func prepare(ctx context.Context, conn *pgx.Conn, cfg ReaderConfig) (LSN, error) {
	if err := CheckPrerequisites(ctx, conn); err != nil {
		return 0, err
	}
	if err := ensurePublication(ctx, conn, cfg); err != nil {
		return 0, err
	}
	return ensureSlot(ctx, conn, cfg.Slot)
}

// ensurePublication puts every table of cfg into the publication that
// captures what its rules want (cfg.Uses) without making Postgres refuse
// the application's UPDATE or DELETE on it: cfg.Publication, which
// publishes every operation, for a table with a usable replica identity;
// its inserts-only companion (InsertsPublication) for a table without one
// whose rules want no update or delete. It creates both publications if
// missing. A table that is missing, or has no replica identity while its
// rules want updates or deletes, fails it with a *CaptureError before any
// table is added; such a table found in cfg.Publication (put there by an
// older walhook) is taken out first, so the application's writes work
// again. See docs/operations.md, "Tables without a primary key".
func ensurePublication(ctx context.Context, conn *pgx.Conn, cfg ReaderConfig) error {
	plan, err := planCapture(ctx, conn, cfg)
	if err != nil {
		return err
	}
	if len(plan.problems) > 0 {
		if err := releaseUnsafe(ctx, conn, cfg.Publication, plan.problems); err != nil {
			return err
		}
		return &CaptureError{Problems: plan.problems}
	}
	inserts := InsertsPublication(cfg.Publication)
	for attempt := 0; ; attempt++ {
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if err := syncPublication(ctx, tx, cfg.Publication, "", plan.main); err != nil {
				return err
			}
			return syncPublication(ctx, tx, inserts, "insert, truncate", plan.inserts)
		})
		var pgErr *pgconn.PgError
		if attempt == 0 && errors.As(err, &pgErr) && pgErr.Code == "42710" {
			continue // created concurrently by another instance: look again
		}
		if err != nil {
			return err
		}
		break
	}
	if err := stampInserts(ctx, conn, inserts); err != nil {
		return err
	}
	if len(plan.inserts) == 0 {
		return nil
	}
	ok, from, restart, err := insertsDecodable(ctx, conn, inserts, cfg.Slot)
	if err != nil || ok {
		return err
	}
	return &CaptureError{Problems: notDecodable(cfg, plan.inserts, from, restart)}
}

// ensureSlot creates the permanent pgoutput slot if missing and returns its
// confirmed_flush_lsn. It is for Prepare, where creating is the intent; a
// Reader's session judges the slot against its record instead (claimSlot).
func ensureSlot(ctx context.Context, conn *pgx.Conn, slot string) (LSN, error) {
	s, err := ReadSlotStatus(ctx, conn, slot)
	if err != nil {
		return 0, err
	}
	if !s.Exists {
		return createSlot(ctx, conn, slot)
	}
	if s.Plugin != "pgoutput" {
		return 0, fmt.Errorf("replication slot %s exists but uses plugin %q, not pgoutput: drop it or choose another slot name", slot, s.Plugin)
	}
	db, err := currentDatabase(ctx, conn)
	if err != nil {
		return 0, err
	}
	if s.Database != db {
		return 0, elsewhereError(slot, s.Database, db)
	}
	return parseConfirmed(nullable(s.ConfirmedLSN), slot)
}

// createSlot creates the permanent pgoutput slot (one created meanwhile by
// another instance will do) and returns its confirmed_flush_lsn.
func createSlot(ctx context.Context, conn *pgx.Conn, slot string) (LSN, error) {
	_, err := conn.Exec(ctx, `SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, slot)
	var pgErr *pgconn.PgError
	if err != nil && !(errors.As(err, &pgErr) && pgErr.Code == "42710") {
		return 0, fmt.Errorf("creating replication slot %s: %w", slot, err)
	}
	return slotConfirmed(ctx, conn, slot)
}

// Teardown drops the replication slot and the publication (with its
// inserts-only companion) if present. It
// fails if a reader still streams from the slot after releaseWait (a reader
// that has just stopped releases the slot a moment later). A slot of that
// name in another database is not this database's: it is left, and the
// error (wrapping ErrSlotElsewhere) says whose it is.
func Teardown(ctx context.Context, url, slot, publication string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("connecting to the source database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var elsewhere error
	if slot != "" {
		s, err := ReadSlotStatus(ctx, conn, slot)
		if err != nil {
			return err
		}
		db, err := currentDatabase(ctx, conn)
		if err != nil {
			return err
		}
		if s.Exists && s.Database != db {
			elsewhere = fmt.Errorf("%w: replication slot %s belongs to database %q, not %q, so it was left as it is", ErrSlotElsewhere, slot, s.Database, db)
		} else if err := dropSlot(ctx, conn, slot); err != nil {
			return err
		}
	}
	for _, pub := range []string{publication, InsertsPublication(publication)} {
		if publication == "" {
			break
		}
		if _, err := conn.Exec(ctx, "DROP PUBLICATION IF EXISTS "+pgx.Identifier{pub}.Sanitize()); err != nil {
			return fmt.Errorf("dropping publication %s: %w", pub, err)
		}
	}
	return elsewhere
}

// ErrSlotElsewhere marks a replication slot of the configured name that
// belongs to another database than the configured one.
var ErrSlotElsewhere = errors.New("replication slot of another database")

// releaseWait is how long Teardown waits for a slot to be let go of: a
// reader that has just stopped leaves its walsender exiting for a moment,
// and the slot stays active until it has.
const releaseWait = 5 * time.Second

// dropSlot drops slot unless a reader holds it (for longer than
// releaseWait); a slot that does not exist is no error. It only ever drops
// a slot of conn's database: slot names are cluster-wide, and a slot of that
// name in another database is someone else's.
func dropSlot(ctx context.Context, conn *pgx.Conn, slot string) error {
	deadline := time.Now().Add(releaseWait)
	for {
		var pid *int32
		err := conn.QueryRow(ctx, `SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1 AND database = current_database()`, slot).Scan(&pid)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("looking up replication slot %s: %w", slot, err)
		}
		if pid == nil {
			_, err = conn.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND database = current_database()`, slot)
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "55006" { // object_in_use: taken again meanwhile
				if err != nil {
					return fmt.Errorf("dropping replication slot %s: %w", slot, err)
				}
				return nil
			}
		}
		if time.Now().After(deadline) {
			if pid != nil {
				return fmt.Errorf("replication slot %s is in use by pid %d: stop the reader first", slot, *pid)
			}
			return fmt.Errorf("replication slot %s stayed in use for %s: stop the reader first", slot, releaseWait)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("dropping replication slot %s: %w", slot, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// slotConfirmed returns the confirmed_flush_lsn of slot.
func slotConfirmed(ctx context.Context, conn *pgx.Conn, slot string) (LSN, error) {
	var confirmed *string
	err := conn.QueryRow(ctx, `SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&confirmed)
	if err != nil {
		return 0, fmt.Errorf("reading confirmed_flush_lsn of slot %s: %w", slot, err)
	}
	return parseConfirmed(confirmed, slot)
}

// parseConfirmed reads a slot's confirmed_flush_lsn as text (nil: 0, the
// slot has confirmed nothing yet).
func parseConfirmed(confirmed *string, slot string) (LSN, error) {
	if confirmed == nil {
		return 0, nil
	}
	lsn, err := pglogrepl.ParseLSN(*confirmed)
	if err != nil {
		return 0, fmt.Errorf("parsing confirmed_flush_lsn %q of slot %s: %w", *confirmed, slot, err)
	}
	return lsn, nil
}
