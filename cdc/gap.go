package cdc

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrGap marks a replication slot that cannot go on from where walhook left
// off: it was dropped, re-created or moved by someone else, invalidated, or
// its publication is gone. Changes were lost to the stream; the Reader does
// not retry, and only `walhook slot recreate` (on purpose) goes on.
var ErrGap = errors.New("changes lost to the replication stream")

// RecoverCommand is the documented way out of a gap (docs/operations.md,
// "When the slot or publication is lost").
const RecoverCommand = "walhook slot recreate -c <config> [--backfill]"

// GapError is a gap: which slot, what happened, and from which position
// committed changes are lost. It wraps ErrGap.
type GapError struct {
	Slot        string
	Publication string
	// Reason says what happened to the slot or the publication.
	Reason string
	// Confirmed is the last position walhook confirmed (or, for a slot it
	// has no record of, the slot's own); 0 when unknown.
	Confirmed LSN
}

func (e *GapError) Error() string {
	since := "since walhook last read it"
	if e.Confirmed != 0 {
		since = "after " + e.Confirmed.String() + ", the last position walhook confirmed,"
	}
	return fmt.Sprintf("replication slot %s cannot go on: %s; the changes committed %s until the slot is re-created are not delivered by the stream. "+
		"To go on, run %s: it re-creates publication %s and the slot from the current position, and with --backfill sends the current rows of the rules' tables as read events so consumers can resync "+
		"(docs/operations.md, \"When the slot or publication is lost\")",
		e.Slot, e.Reason, since, RecoverCommand, e.Publication)
}

// Unwrap makes errors.Is(err, ErrGap) true.
func (e *GapError) Unwrap() error { return ErrGap }

// missingPublication matches pgoutput's error for a publication that does
// not exist at the position being decoded.
var missingPublication = regexp.MustCompile(`publication "(.*)" does not exist`)

// streamGap classifies an error of a streaming session: a stream that
// cannot go on (its publication gone at the decoded position, the slot
// invalidated) is a gap; anything else is for a retry.
func (r *Reader) streamGap(err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return nil
	}
	gap := &GapError{Slot: r.cfg.Slot, Publication: r.cfg.Publication, Confirmed: r.recordedLSN()}
	switch {
	case missingPublication.MatchString(pgErr.Message):
		gap.Reason = fmt.Sprintf("decoding stopped with %q: publication %s was dropped after that position, and a publication created later is not seen by a slot whose position predates it", pgErr.Message, r.cfg.Publication)
	case pgErr.Code == "55000" && invalidatedSlot.MatchString(pgErr.Message):
		gap.Reason = fmt.Sprintf("Postgres invalidated it (%q): WAL it still needed was removed, for example because max_slot_wal_keep_size was exceeded", pgErr.Message)
	default:
		return nil
	}
	return gap
}

// invalidatedSlot matches the error of reading an invalidated slot
// (Postgres 15: "cannot read from logical replication slot", 16 and later:
// "can no longer get changes from replication slot").
var invalidatedSlot = regexp.MustCompile(`cannot read from logical replication slot|can no longer get changes from replication slot`)
