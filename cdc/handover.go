package cdc

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Handing the slot over between instances (docs/scaling.md, "Rolling
// restarts"). Only one reader streams from a slot; the others (standbys)
// try it again and again. A standby whose slot is in use tries again
// after about ReaderConfig.SlotInUseRetry rather than backing off like
// after other errors, so the slot is never unread for long once its holder
// dies; a holder that stops cleanly tells the others (ReaderConfig.Released,
// Reader.Retry), and they try at once, then every handoverRetry for
// handoverWindow while its walsender exits.
const (
	// DefaultSlotInUseRetry is ReaderConfig.SlotInUseRetry's default.
	DefaultSlotInUseRetry = time.Second
	handoverRetry         = 100 * time.Millisecond
	handoverWindow        = 2 * time.Second
)

// Retry makes a Reader waiting for its slot, in use by another process,
// try it again now: call it when the holder announced it let go. It never
// blocks; a call while the Reader tries or streams is kept for its next
// wait for the slot.
func (r *Reader) Retry() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// inUseWait is how long to wait before trying a slot in use again: about
// SlotInUseRetry (±25 %), or handoverRetry within handoverWindow of a
// Retry.
func (r *Reader) inUseWait(wokeAt time.Time) time.Duration {
	d := r.cfg.SlotInUseRetry
	if !wokeAt.IsZero() && time.Since(wokeAt) < handoverWindow {
		d = handoverRetry
	}
	return d*3/4 + rand.N(d/2+1)
}

// slotHolder reports whether err says the slot is in use by another
// process, and that process's pid ("unknown" if not said).
func slotHolder(err error) (pid string, inUse bool) {
	var held *heldError
	if errors.As(err, &held) {
		return strconv.Itoa(int(held.pid)), true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "55006" { // object_in_use, from START_REPLICATION
		if m := activePID.FindStringSubmatch(pgErr.Message); m != nil {
			return m[1], true
		}
		return "unknown", true
	}
	return "", false
}

// heldError is a slot found active before asking for it: the session
// then opens no replication connection (a walsender) in vain.
type heldError struct {
	slot string
	pid  int32
}

func (e *heldError) Error() string {
	return fmt.Sprintf("replication slot %s is in use by pid %d", e.slot, e.pid)
}

func (e *heldError) Unwrap() error { return ErrSlotInUse }

// checkFree returns a *heldError when another process streams from the
// slot now: the cheap look (one query on a session already open) before a
// replication connection, which costs the source a walsender process.
func checkFree(ctx context.Context, conn *pgx.Conn, slot string) error {
	st, err := ReadSlotStatus(ctx, conn, slot)
	if err != nil {
		return err
	}
	if st.Active {
		return &heldError{slot: slot, pid: st.ActivePID}
	}
	return nil
}
