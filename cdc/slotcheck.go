package cdc

import (
	"context"
	"fmt"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// slotFacts is what a session start (or an inspection) sees: the server
// and database connected to, the slot, the publication, and the record.
type slotFacts struct {
	slot, publication string
	systemID          string
	database          string
	status            SlotStatus
	pubExists         bool
	rec               *SlotRecord // nil: none
	// ownPosition: the record's position is shared by every walhook on
	// the slot (durable records), so a slot confirmed beyond it was moved
	// by someone else. A Reader's memory record knows only its own.
	ownPosition bool
}

// slotVerdict is what a session start does with the slot.
type slotVerdict int

const (
	slotKeep   slotVerdict = iota // recorded and unchanged: stream from it
	slotAdopt                     // present, not recorded: record it and stream
	slotCreate                    // neither present nor recorded: create and record it
)

// judgeSlot decides whether walhook may stream from the slot. A slot that
// cannot continue where walhook left off is a *GapError; a slot that is not
// walhook's to use wraps ErrPrerequisite.
func judgeSlot(f slotFacts) (slotVerdict, error) {
	s := f.status
	gap := func(confirmed LSN, format string, args ...any) error {
		return &GapError{Slot: f.slot, Publication: f.publication, Confirmed: confirmed, Reason: fmt.Sprintf(format, args...)}
	}
	if f.rec == nil {
		switch {
		case !s.Exists:
			return slotCreate, nil
		case s.Type != "" && s.Type != "logical":
			return 0, fmt.Errorf("%w: replication slot %s is a %s slot, not a logical one: set source.slot to another name", ErrPrerequisite, f.slot, s.Type)
		case s.Database != f.database:
			return 0, elsewhereError(f.slot, s.Database, f.database)
		case s.Plugin != "pgoutput":
			return 0, fmt.Errorf("%w: replication slot %s exists but uses plugin %q, not pgoutput: drop it or choose another slot name", ErrPrerequisite, f.slot, s.Plugin)
		}
		confirmed, _ := parseConfirmed(nullable(s.ConfirmedLSN), f.slot)
		switch {
		case s.WALStatus == "lost":
			return 0, gap(confirmed, "Postgres invalidated it (wal_status lost): WAL it still needed was removed, for example because max_slot_wal_keep_size was exceeded")
		case !f.pubExists:
			return 0, gap(confirmed, "publication %s does not exist (it was dropped), and a publication created now is not seen by a slot whose position predates it", f.publication)
		}
		return slotAdopt, nil
	}
	rec := *f.rec
	switch {
	case rec.SystemID != f.systemID:
		return 0, gap(rec.Confirmed, "walhook recorded it on the server with system identifier %s, but source.url now reaches system %s (a different or restored cluster)", rec.SystemID, f.systemID)
	case rec.Database != f.database:
		return 0, gap(rec.Confirmed, "walhook recorded it in database %q, but source.url now connects to database %q", rec.Database, f.database)
	case !s.Exists:
		return 0, gap(rec.Confirmed, "the slot does not exist any more (it was dropped)")
	case s.Database != f.database:
		return 0, gap(rec.Confirmed, "the slot was dropped, and a slot of that name now belongs to database %q, not %q", s.Database, f.database)
	case s.Plugin != "pgoutput":
		return 0, gap(rec.Confirmed, "the slot was re-created with plugin %q", s.Plugin)
	case s.WALStatus == "lost":
		return 0, gap(rec.Confirmed, "Postgres invalidated it (wal_status lost): WAL it still needed was removed, for example because max_slot_wal_keep_size was exceeded")
	}
	confirmed, err := parseConfirmed(nullable(s.ConfirmedLSN), f.slot)
	if err != nil {
		return 0, err
	}
	switch {
	case f.ownPosition && confirmed > rec.Confirmed:
		return 0, gap(rec.Confirmed, "its confirmed position %s is ahead of %s, the last position walhook confirmed: someone re-created or advanced it", confirmed, rec.Confirmed)
	case !f.pubExists:
		return 0, gap(rec.Confirmed, "publication %s does not exist (it was dropped), and a publication created now is not seen by a slot whose position predates it", f.publication)
	}
	return slotKeep, nil
}

// elsewhereError is the error for a slot of this name in another database.
func elsewhereError(slot, database, want string) error {
	return fmt.Errorf("%w: replication slot %s belongs to database %q, not %q (a logical slot decodes only its own database): set source.slot to another name, or drop the old slot if nothing uses it (SELECT pg_drop_replication_slot('%s') connected to %s)",
		ErrPrerequisite, slot, database, want, slot, database)
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// claimSlot runs at the start of every session, once the prerequisites
// are checked, on the session's SQL and replication connections: it judges the slot
// against its record (judgeSlot), then ensures the publication, creates
// and records or adopts the slot as the verdict says, and returns the
// slot's confirmed position.
func (r *Reader) claimSlot(ctx context.Context, sql *pgx.Conn, repl *pgconn.PgConn) (LSN, error) {
	ident, err := pglogrepl.IdentifySystem(ctx, repl)
	if err != nil {
		return 0, fmt.Errorf("identifying the source server: %w", err)
	}
	f := slotFacts{slot: r.cfg.Slot, publication: r.cfg.Publication, systemID: ident.SystemID, database: ident.DBName, ownPosition: r.durable}
	// The slot first, then the record: the record is written before the
	// slot is confirmed, so read in this order a slot confirmed by another
	// walhook meanwhile is never ahead of the record.
	if f.status, err = ReadSlotStatus(ctx, sql, r.cfg.Slot); err != nil {
		return 0, err
	}
	pub, err := readPublicationStatus(ctx, sql, r.cfg.Publication)
	if err != nil {
		return 0, err
	}
	f.pubExists = pub.Exists
	rec, found, err := r.records.LoadSlot(ctx, r.cfg.Slot)
	if err != nil {
		return 0, fmt.Errorf("reading the record of replication slot %s: %w", r.cfg.Slot, err)
	}
	if found {
		if !r.durable {
			// A memory record is not advanced: whatever this Reader
			// confirmed is at most what it acknowledged.
			rec.Confirmed = max(rec.Confirmed, r.ackedLSN())
		}
		f.rec = &rec
	}
	verdict, err := judgeSlot(f)
	if err != nil {
		return 0, err
	}
	if err := ensurePublication(ctx, sql, r.cfg); err != nil {
		return 0, err
	}
	switch verdict {
	case slotCreate:
		confirmed, err := createSlot(ctx, sql, r.cfg.Slot)
		if err != nil {
			return 0, err
		}
		if err := r.saveRecord(ctx, f, confirmed); err != nil {
			return 0, err
		}
		r.log.Info().Stringer("lsn", confirmed).Msgf("created replication slot %s in database %s", r.cfg.Slot, f.database)
		return confirmed, nil
	case slotAdopt:
		confirmed, _ := parseConfirmed(nullable(f.status.ConfirmedLSN), r.cfg.Slot)
		if err := r.saveRecord(ctx, f, confirmed); err != nil {
			return 0, err
		}
		r.log.Info().Stringer("lsn", confirmed).Msgf("adopted replication slot %s of database %s: walhook had no record of it", r.cfg.Slot, f.database)
		return confirmed, nil
	}
	r.mu.Lock()
	r.claimed = true
	r.mu.Unlock()
	r.setRecorded(rec.Confirmed)
	return parseConfirmed(nullable(f.status.ConfirmedLSN), r.cfg.Slot)
}

// saveRecord records the slot of f at confirmed as walhook's.
func (r *Reader) saveRecord(ctx context.Context, f slotFacts, confirmed LSN) error {
	rec := SlotRecord{Slot: r.cfg.Slot, Database: f.database, SystemID: f.systemID, Confirmed: confirmed}
	if err := r.records.SaveSlot(ctx, rec); err != nil {
		return fmt.Errorf("recording replication slot %s: %w", r.cfg.Slot, err)
	}
	r.mu.Lock()
	r.claimed = true
	r.recorded = confirmed
	r.mu.Unlock()
	return nil
}
