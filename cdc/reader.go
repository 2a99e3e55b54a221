package cdc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/walhook/walhook/internal/testsignal"
)

// Reader streams committed transactions from a logical replication slot to
// a Sink and confirms to the server only what the Sink acknowledged.
type Reader struct {
	cfg ReaderConfig
	log zerolog.Logger

	// records keeps the record of the slot; durable when the caller gave
	// it (ReaderConfig.Records), so confirmation waits for the record.
	records SlotRecords
	durable bool

	mu     sync.Mutex
	acked  LSN // highest position settled by the consumer (or idle-advanced)
	status Status
	// recorded is the position durably recorded: confirmation never goes
	// beyond it. claimed: a session judged the slot walhook's (and it is
	// recorded); gap: the Reader stopped on a gap.
	recorded LSN
	claimed  bool
	gap      bool
	// settled is the highest position acknowledged through Ack (acked
	// also moves past idle WAL).
	settled LSN
	// walsender is the server process of the last session that streamed
	// (pgconn's PID): at shutdown, a slot active under another pid has
	// been taken over (advance.go).
	walsender uint32
	// unconfirmed: transactions handed over and not yet acked (lag.go).
	unconfirmed unconfirmedCommits

	// applied is what was handed to the Sink without error; only the
	// goroutine calling Run touches it.
	applied handedOver
	// wake carries a Retry to the wait for a slot in use (handover.go).
	wake chan struct{}

	testSignals readerTestSignals
}

// readerTestSignals tell tests when the reader reached a state (see
// export_test.go); they are off outside tests.
type readerTestSignals struct {
	// streaming: a session streams, from this position.
	streaming testsignal.Signal[LSN]
	// interrupted: a session ended, with this error ("" if none).
	interrupted testsignal.Signal[string]
}

// NewReader returns a Reader for cfg; Run starts it.
func NewReader(cfg ReaderConfig) *Reader {
	cfg = cfg.withDefaults()
	r := &Reader{cfg: cfg, log: cfg.Logger.With().Str("component", "cdc").Str("slot", cfg.Slot).Logger(), records: cfg.Records, durable: cfg.Records != nil, wake: make(chan struct{}, 1)}
	if r.records == nil {
		r.records = &memoryRecords{}
	}
	return r
}

// Ack records that every transaction up to lsn (a Transaction.EndLSN) is
// settled. Lower positions than already acknowledged are ignored. Safe for
// concurrent use.
func (r *Reader) Ack(lsn LSN) {
	r.mu.Lock()
	if lsn > r.acked {
		r.acked = lsn
	}
	r.settled = max(r.settled, lsn)
	r.mu.Unlock()
}

// Status returns a snapshot of the reader's state. Safe for concurrent use.
func (r *Reader) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

func (r *Reader) ackedLSN() LSN {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.acked
}

func (r *Reader) updateStatus(f func(*Status)) {
	r.mu.Lock()
	f(&r.status)
	r.mu.Unlock()
}

// Run streams changes into sink until ctx is done (then it returns nil) or
// sink returns an error (returned wrapped). It reconnects by itself, with
// capped exponential backoff, after connection errors, server restarts and
// while another process holds the slot. It also returns an error wrapping
// ErrPrerequisite when the server or role cannot do logical replication,
// one wrapping ErrGap when the slot cannot go on from where walhook left
// off (GapError), and on an invalid configuration.
func (r *Reader) Run(ctx context.Context, sink Sink) error {
	if err := r.cfg.validate(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	txns := make(chan Transaction, queuedTransactions)
	streamDone := make(chan error, 1)
	go func() { streamDone <- r.stream(ctx, txns) }()

	for {
		select {
		case err := <-streamDone:
			if ctx.Err() != nil {
				return nil
			}
			return err
		case tx := <-txns:
			resent := r.applied.resent
			fresh, err := r.applied.trim(&tx, r.ackedLSN())
			if r.applied.resent > resent {
				r.log.Info().Uint32("xid", tx.XID).Stringer("commit_lsn", tx.CommitLSN).Int("handed_over", r.applied.next).
					Msg("a transaction interrupted by the reconnection is sent again; skipping the changes already handed over")
			}
			if err != nil {
				cancel()
				<-streamDone
				return err
			}
			if !fresh {
				continue // already handed over before a reconnection, or settled
			}
			// A piece before the last has no end LSN yet; its commit LSN
			// stands in (no transaction ends between the two, so the
			// watermark passes it only when this one settles).
			r.handedOver(cmp.Or(tx.EndLSN, tx.CommitLSN), tx.CommitTime)
			if err := sink.Apply(ctx, tx); err != nil {
				cancel()
				<-streamDone
				if ctx.Err() != nil && errors.Is(err, context.Canceled) {
					return nil
				}
				return fmt.Errorf("applying transaction %d ending at %s: %w", tx.XID, tx.EndLSN, err)
			}
			r.applied.record(&tx)
		}
	}
}

// stableSession is how long a session must have streamed for the next
// reconnection to start again from the shortest backoff.
const stableSession = time.Minute

var activePID = regexp.MustCompile(`(?i)PID (\d+)`)

// stream runs replication sessions one after another until ctx is done,
// waiting with capped exponential backoff between them.
func (r *Reader) stream(ctx context.Context, out chan<- Transaction) error {
	if r.durable {
		rctx, stop := context.WithCancel(ctx)
		recorded := make(chan struct{})
		go func() { defer close(recorded); r.record(rctx) }()
		defer func() { stop(); <-recorded }()
	}
	backoff := minBackoff
	var wokeAt time.Time // the last Retry that cut a wait short
	holder := ""         // the pid last logged as holding the slot
	for {
		began := time.Now()
		streamed, err := r.session(ctx, out)
		if streamed && r.cfg.Released != nil {
			r.cfg.Released(context.WithoutCancel(ctx))
		}
		r.updateStatus(func(s *Status) {
			s.Connected, s.Streaming = false, false
			if err != nil {
				s.LastError = err.Error()
			}
		})
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, ErrPrerequisite) {
			r.log.Error().Err(err).Msg("logical replication is not possible")
			return err
		}
		if gap := r.streamGap(err); gap != nil {
			err = gap
		}
		if errors.Is(err, ErrGap) {
			r.mu.Lock()
			r.gap = true
			r.mu.Unlock()
			r.updateStatus(func(s *Status) { s.LastError = err.Error() })
			r.log.Error().Err(err).Msg("changes were lost to the replication stream; stopping")
			return err
		}
		if streamed && time.Since(began) >= stableSession {
			backoff = minBackoff // a failure that keeps recurring at once still backs off
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		// A Retry ends only the wait for a slot in use; other errors back off.
		var woken <-chan struct{}
		pid, inUse := slotHolder(err)
		if inUse {
			wait, woken = r.inUseWait(wokeAt), r.wake
			// Logged when the holder changes, not at every try (about
			// one a second).
			ev := r.log.Debug()
			if pid != holder {
				ev, holder = r.log.Info(), pid
			}
			ev.Str("pid", pid).Stringer("retry_in", wait).
				Msgf("replication slot %s is in use by pid %s; retrying", r.cfg.Slot, pid)
			r.updateStatus(func(s *Status) {
				s.LastError = fmt.Sprintf("replication slot %s is in use by pid %s; retrying", r.cfg.Slot, pid)
			})
		} else {
			holder = ""
			if err != nil {
				r.log.Warn().Err(err).Stringer("retry_in", wait).Msg("replication interrupted; reconnecting")
			}
		}
		r.testSignals.interrupted.Emit(r.Status().LastError)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		case <-woken:
			wokeAt = time.Now()
		}
		if !inUse {
			backoff = min(backoff*2, r.cfg.MaxBackoff)
		}
	}
}
