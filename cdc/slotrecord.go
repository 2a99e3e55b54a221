package cdc

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// SlotRecord is what walhook records about the replication slot it owns,
// so that a slot dropped, re-created, moved or replaced behind its back is
// noticed instead of streamed from as if nothing happened.
type SlotRecord struct {
	Slot     string
	Database string
	// SystemID is the server's system identifier (IDENTIFY_SYSTEM).
	SystemID string
	// Confirmed is never behind what walhook confirmed to the slot: a
	// position is recorded before it is confirmed.
	Confirmed LSN
}

// SlotRecords keeps SlotRecords durably (the relay keeps them in the state
// store). A Reader without one keeps its record in memory, which catches a
// slot lost while it runs but not one lost while it is stopped.
type SlotRecords interface {
	// LoadSlot returns the record of slot; found is false when there is none.
	LoadSlot(ctx context.Context, slot string) (rec SlotRecord, found bool, err error)
	// SaveSlot records rec, replacing any record of rec.Slot.
	SaveSlot(ctx context.Context, rec SlotRecord) error
	// AdvanceSlot moves the recorded position of slot forward to lsn.
	AdvanceSlot(ctx context.Context, slot string, lsn LSN) error
}

// memoryRecords is the SlotRecords of a Reader given none.
type memoryRecords struct {
	mu   sync.Mutex
	recs map[string]SlotRecord
}

func (m *memoryRecords) LoadSlot(_ context.Context, slot string) (SlotRecord, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.recs[slot]
	return rec, ok, nil
}

func (m *memoryRecords) SaveSlot(_ context.Context, rec SlotRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.recs == nil {
		m.recs = map[string]SlotRecord{}
	}
	m.recs[rec.Slot] = rec
	return nil
}

func (m *memoryRecords) AdvanceSlot(_ context.Context, slot string, lsn LSN) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if rec, ok := m.recs[slot]; ok && lsn > rec.Confirmed {
		rec.Confirmed = lsn
		m.recs[slot] = rec
	}
	return nil
}

// recordTimeout bounds one write of the recorded position.
const recordTimeout = 10 * time.Second

// confirmable is the position standby status may report: the acknowledged
// position, but never beyond what is durably recorded (without durable
// records, memory cannot fall behind, so the acknowledged one).
func (r *Reader) confirmable() LSN {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.durable {
		return r.acked
	}
	return min(r.acked, r.recorded)
}

// recordedLSN is the position last recorded (0 before the first session).
func (r *Reader) recordedLSN() LSN {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.recorded
}

// setRecorded notes that lsn is durably recorded.
func (r *Reader) setRecorded(lsn LSN) {
	r.mu.Lock()
	if lsn > r.recorded {
		r.recorded = lsn
	}
	r.mu.Unlock()
}

// idleRecordInterval is how often a position that moved only past idle
// WAL (no transaction settled) is recorded. Recording writes WAL when the
// state schema is in the source database, which the next keepalive turns
// into idle WAL to record: recording that at once would write every
// RecordInterval forever on an idle database.
const idleRecordInterval = 30 * time.Second

// record writes the acknowledged position to the records when it moved
// past the recorded one, every RecordInterval until ctx ends: one write a
// second at most, whatever the transaction rate (every idleRecordInterval
// when no transaction settled). A write that fails only holds confirmation
// back; it is tried again at the next tick.
func (r *Reader) record(ctx context.Context) {
	t := time.NewTicker(r.cfg.RecordInterval)
	defer t.Stop()
	failing := false
	var lastWrite time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.mu.Lock()
		acked, settled, recorded, claimed := r.acked, r.settled, r.recorded, r.claimed
		r.mu.Unlock()
		if !claimed || acked <= recorded || (settled <= recorded && time.Since(lastWrite) < idleRecordInterval) {
			continue
		}
		lastWrite = time.Now()
		wctx, cancel := context.WithTimeout(ctx, recordTimeout)
		err := r.records.AdvanceSlot(wctx, r.cfg.Slot, acked)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			failing = true
			r.log.Warn().Err(err).Stringer("lsn", acked).Msg("recording the slot's position; not confirming it to the slot until it is recorded")
		case err == nil:
			if failing {
				r.log.Info().Stringer("lsn", acked).Msg("recorded the slot's position again")
			}
			failing = false
			r.setRecorded(acked)
		}
	}
}

// stopRecordTimeout bounds recordAcked.
const stopRecordTimeout = time.Second

// recordAcked records the acknowledged position now rather than at the
// recorder's next tick, for the last status of a session ended because the
// Reader stops: it then confirms all that is settled, and the next holder
// of the slot reads again only what was not (docs/scaling.md, "Rolling
// restarts"). A failed write only leaves the slot where it was.
func (r *Reader) recordAcked(ctx context.Context) {
	r.mu.Lock()
	acked, recorded, claimed := r.acked, r.recorded, r.claimed
	r.mu.Unlock()
	if !r.durable || !claimed || acked <= recorded {
		return
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopRecordTimeout)
	defer cancel()
	if err := r.records.AdvanceSlot(wctx, r.cfg.Slot, acked); err != nil {
		r.log.Warn().Err(err).Stringer("lsn", acked).Msg("recording the slot's position before letting go of it; the next reader reads again from the last one recorded")
		return
	}
	r.setRecorded(acked)
}

// ConfirmSettled records lsn, then confirms it to the slot with
// pg_replication_slot_advance (for when the Reader has stopped, at
// shutdown). It does nothing after the Reader stopped on a gap: the slot
// is not the one walhook read from. When another reader streams from the
// slot by then, it returns an error wrapping ErrSlotInUse: that reader
// confirms the slot from where it started.
func (r *Reader) ConfirmSettled(ctx context.Context, lsn LSN) error {
	r.mu.Lock()
	claimed, gap, walsender := r.claimed, r.gap, r.walsender
	r.mu.Unlock()
	if gap {
		return fmt.Errorf("not confirming %s: replication slot %s cannot go on (see the error it stopped with)", lsn, r.cfg.Slot)
	}
	if !claimed {
		return fmt.Errorf("not confirming %s: walhook did not stream from slot %s", lsn, r.cfg.Slot)
	}
	if err := r.records.AdvanceSlot(ctx, r.cfg.Slot, lsn); err != nil {
		return fmt.Errorf("recording %s before confirming it: %w", lsn, err)
	}
	r.setRecorded(lsn)
	return confirm(ctx, r.cfg.URL, r.cfg.Slot, lsn, walsender)
}
