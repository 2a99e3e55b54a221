package cdc

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
)

// currentDatabase is the database conn is connected to.
func currentDatabase(ctx context.Context, conn *pgx.Conn) (string, error) {
	var db string
	if err := conn.QueryRow(ctx, `SELECT current_database()`).Scan(&db); err != nil {
		return "", fmt.Errorf("reading the current database: %w", err)
	}
	return db, nil
}

// systemID is the server's system identifier, as IDENTIFY_SYSTEM prints it
// (unsigned), read over an ordinary connection.
func systemID(ctx context.Context, conn *pgx.Conn) (string, error) {
	var id int64
	if err := conn.QueryRow(ctx, `SELECT system_identifier FROM pg_control_system()`).Scan(&id); err != nil {
		return "", fmt.Errorf("reading the server's system identifier: %w", err)
	}
	return strconv.FormatUint(uint64(id), 10), nil
}

// SlotCheck is the slot and publication of a config, judged against
// walhook's record of its slot as a session start would judge them.
type SlotCheck struct {
	// Database is the database the config connects to.
	Database    string
	SystemID    string
	Slot        SlotStatus
	Publication PublicationStatus
	// Record is walhook's record of the slot; nil when there is none.
	Record *SlotRecord
	// Problem is nil when walhook could stream from the slot (or create or
	// adopt it); else a *GapError, or an error wrapping ErrPrerequisite
	// for a slot that is not this database's to use.
	Problem error
}

// Elsewhere reports whether a slot of the configured name exists in
// another database than the configured one.
func (c SlotCheck) Elsewhere() bool { return c.Slot.Exists && c.Slot.Database != c.Database }

// CheckSlot reads the slot and the publication at url and judges them
// against walhook's record of the slot in records (nil: no records), as a
// session start would, changing nothing. Record is the record (nil: none).
func CheckSlot(ctx context.Context, url, slot, publication string, records SlotRecords) (c SlotCheck, err error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return c, fmt.Errorf("connecting to the source database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if c.Database, err = currentDatabase(ctx, conn); err != nil {
		return c, err
	}
	if c.SystemID, err = systemID(ctx, conn); err != nil {
		return c, err
	}
	// The slot before the record, as in claimSlot: a walhook that runs
	// records a position before confirming it.
	if c.Slot, err = ReadSlotStatus(ctx, conn, slot); err != nil {
		return c, err
	}
	if c.Publication, err = readPublicationStatus(ctx, conn, publication); err != nil {
		return c, err
	}
	if records != nil {
		rec, found, err := records.LoadSlot(ctx, slot)
		if err != nil {
			return c, fmt.Errorf("reading the record of replication slot %s: %w", slot, err)
		}
		if found {
			c.Record = &rec
		}
	}
	_, c.Problem = judgeSlot(slotFacts{slot: slot, publication: publication, systemID: c.SystemID, database: c.Database,
		status: c.Slot, pubExists: c.Publication.Exists, rec: c.Record, ownPosition: true})
	return c, nil
}

// ErrSlotInUse marks a slot a reader streams from.
var ErrSlotInUse = errors.New("replication slot in use")

// Recreate re-creates the publication (if missing; its tables set to
// cfg.Tables) and the slot, from the current position, on purpose: the
// way out of a gap. It drops the slot first if present, refusing while a
// reader streams from it, and refuses a slot of that name in another
// database. It returns the record of the new slot, for the caller to save,
// and the slot as it was before.
func Recreate(ctx context.Context, cfg ReaderConfig) (SlotRecord, SlotStatus, error) {
	if err := cfg.validate(); err != nil {
		return SlotRecord{}, SlotStatus{}, err
	}
	conn, err := pgx.Connect(ctx, cfg.URL)
	if err != nil {
		return SlotRecord{}, SlotStatus{}, fmt.Errorf("connecting to the source database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := CheckPrerequisites(ctx, conn); err != nil {
		return SlotRecord{}, SlotStatus{}, err
	}
	db, err := currentDatabase(ctx, conn)
	if err != nil {
		return SlotRecord{}, SlotStatus{}, err
	}
	before, err := ReadSlotStatus(ctx, conn, cfg.Slot)
	if err != nil {
		return SlotRecord{}, before, err
	}
	switch {
	case before.Exists && before.Database != db:
		return SlotRecord{}, before, elsewhereError(cfg.Slot, before.Database, db)
	case before.Active:
		return SlotRecord{}, before, fmt.Errorf("%w: replication slot %s is in use by pid %d: stop the walhook (or other reader) that streams from it first", ErrSlotInUse, cfg.Slot, before.ActivePID)
	case before.Exists:
		if err := dropSlot(ctx, conn, cfg.Slot); err != nil {
			return SlotRecord{}, before, err
		}
	}
	if err := ensurePublication(ctx, conn, cfg); err != nil {
		return SlotRecord{}, before, err
	}
	repl, err := connectReplication(ctx, cfg.URL)
	if err != nil {
		return SlotRecord{}, before, err
	}
	defer repl.Close(context.WithoutCancel(ctx))
	ident, err := pglogrepl.IdentifySystem(ctx, repl)
	if err != nil {
		return SlotRecord{}, before, fmt.Errorf("identifying the source server: %w", err)
	}
	confirmed, err := createSlot(ctx, conn, cfg.Slot)
	if err != nil {
		return SlotRecord{}, before, err
	}
	return SlotRecord{Slot: cfg.Slot, Database: ident.DBName, SystemID: ident.SystemID, Confirmed: confirmed}, before, nil
}
