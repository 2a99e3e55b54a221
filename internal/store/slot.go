package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pglogrepl"
)

// SlotRecord is the replication slot walhook owns, as it recorded it: the
// server and database the slot is in and the position walhook last
// confirmed to it (recorded before it is confirmed).
type SlotRecord struct {
	Slot      string
	Database  string
	SystemID  string
	Confirmed pglogrepl.LSN
	CreatedAt time.Time
	UpdatedAt time.Time
}

// SlotRecord returns the record of slot, or ErrNotFound.
func (s *Store) SlotRecord(ctx context.Context, slot string) (SlotRecord, error) {
	var r SlotRecord
	var confirmed string
	err := s.pool.QueryRow(ctx, s.sql(`SELECT slot_name, database_name, system_id, confirmed_lsn::text, created_at, updated_at
		FROM {s}.slots WHERE slot_name = $1`), slot).Scan(&r.Slot, &r.Database, &r.SystemID, &confirmed, &r.CreatedAt, &r.UpdatedAt)
	if err != nil {
		return SlotRecord{}, fmt.Errorf("reading the record of replication slot %s: %w", slot, notFound(err))
	}
	if r.Confirmed, err = pglogrepl.ParseLSN(confirmed); err != nil {
		return SlotRecord{}, fmt.Errorf("reading the record of replication slot %s: %w", slot, err)
	}
	return r, nil
}

// SaveSlotRecord records r as the slot walhook owns (a slot adopted,
// created or re-created), replacing any record of the same slot name. On
// the same server and database the recorded position never moves back: an
// instance that adopts a slot another has just created and confirmed must
// not undo the other's record.
func (s *Store) SaveSlotRecord(ctx context.Context, r SlotRecord) error {
	_, err := s.pool.Exec(ctx, s.sql(`INSERT INTO {s}.slots AS o (slot_name, database_name, system_id, confirmed_lsn)
		VALUES ($1, $2, $3, $4::pg_lsn)
		ON CONFLICT (slot_name) DO UPDATE SET database_name = excluded.database_name, system_id = excluded.system_id,
			confirmed_lsn = CASE WHEN o.database_name = excluded.database_name AND o.system_id = excluded.system_id
				THEN greatest(o.confirmed_lsn, excluded.confirmed_lsn) ELSE excluded.confirmed_lsn END,
			created_at = now(), updated_at = now()`),
		r.Slot, r.Database, r.SystemID, r.Confirmed.String())
	if err != nil {
		return fmt.Errorf("recording replication slot %s: %w", r.Slot, err)
	}
	return nil
}

// AdvanceSlotRecord moves the recorded confirmed position of slot forward
// to lsn (never back). ErrNotFound when slot has no record.
func (s *Store) AdvanceSlotRecord(ctx context.Context, slot string, lsn pglogrepl.LSN) error {
	tag, err := s.pool.Exec(ctx, s.sql(`UPDATE {s}.slots SET confirmed_lsn = greatest(confirmed_lsn, $2::pg_lsn), updated_at = now()
		WHERE slot_name = $1`), slot, lsn.String())
	if err == nil && tag.RowsAffected() == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("recording position %s of replication slot %s: %w", lsn, slot, err)
	}
	return nil
}

// DeleteSlotRecord removes the record of slot in database, and of the
// tables captured through it; it reports whether there was one.
func (s *Store) DeleteSlotRecord(ctx context.Context, slot, database string) (bool, error) {
	var n int
	err := s.pool.QueryRow(ctx, s.sql(`WITH gone AS (DELETE FROM {s}.slots WHERE slot_name = $1 AND database_name = $2 RETURNING slot_name),
		tables AS (DELETE FROM {s}.captured_tables WHERE slot_name IN (SELECT slot_name FROM gone))
		SELECT count(*) FROM gone`), slot, database).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("deleting the record of replication slot %s: %w", slot, err)
	}
	return n > 0, nil
}
