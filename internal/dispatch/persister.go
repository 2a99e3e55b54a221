package dispatch

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/walhook/walhook/internal/event"
	"github.com/walhook/walhook/internal/settle"
	"github.com/walhook/walhook/internal/store"
)

// item is one write for the store; its batch's delivery is settled once
// the write has committed.
type item struct {
	d       store.Delivery
	attempt *store.Attempt
	tx      *settle.Tx
	// fresh deliveries are due now: the retry loop is woken for them.
	fresh bool
	// shared deliveries are first deliveries stored for any instance to
	// send (Options.ShareAll): not retries, so no outcome is reported.
	shared bool
	// failedEndpoint is set when a first attempt failed: its health is
	// updated with the batch.
	failedEndpoint *Endpoint
	// failures, when set, make this a failed-evaluations item (no delivery).
	failures []event.Failure
	// keys is the ledger of an ordered endpoint that counted this write as
	// on its way to the store; it is told when the write ends.
	keys *ledger
}

// persister batches store writes. Batches form by themselves under load:
// it takes what is waiting, up to maxBatch, and writes it in one
// transaction. It owns no lock: what it reports after a commit (the
// ledger, the settle transaction, the observer) takes only leaf locks, so
// nothing it waits on can wait on it.
type persister struct {
	d         *Dispatcher
	ch        chan item
	logCh     chan item
	done      chan struct{}
	logged    chan struct{}
	ctx       context.Context // ends at the shutdown deadline: writes are abandoned
	abandoned atomic.Int64
}

const maxBatch = 1000

func newPersister(d *Dispatcher) *persister {
	return &persister{
		d:      d,
		ch:     make(chan item, 4096),
		logCh:  make(chan item, 4096),
		done:   make(chan struct{}),
		logged: make(chan struct{}),
	}
}

// start starts the writer loops; ctx ending abandons writes in progress.
func (p *persister) start(ctx context.Context) {
	p.ctx = ctx
	go p.loop()
	go p.logLoop()
}

// add queues an item; it waits while the queue is full (backpressure on
// the source) or until ctx ends. The caller holds no lock.
func (p *persister) add(ctx context.Context, it item) error {
	select {
	case p.ch <- it:
		return nil
	case <-ctx.Done():
		if it.keys != nil {
			it.keys.stored(it.d.Key)
		}
		return fmt.Errorf("queueing a store write: %w", ctx.Err())
	}
}

// hand is add for the dispatcher's own goroutines (lanes, pacing), whose
// ctx ends at the shutdown deadline: an item not queued by then is
// abandoned, its batch left unsettled.
func (p *persister) hand(ctx context.Context, it item) {
	if err := p.add(ctx, it); err != nil {
		p.abandoned.Add(1)
		p.d.log.Error().Err(err).Str("delivery_id", it.d.ID).Msg("a delivery could not be handed to the store by the shutdown deadline; its change is read again after a restart")
	}
}

// logSuccess queues a successful first attempt for the attempts log; it
// is dropped (and said so) when the log cannot keep up by ctx's end.
func (p *persister) logSuccess(ctx context.Context, d store.Delivery, a store.Attempt) {
	select {
	case p.logCh <- item{d: d, attempt: &a}:
	case <-ctx.Done():
		p.d.log.Warn().Str("delivery_id", d.ID).Msg("attempts log not written at shutdown")
	}
}

// stop writes what is queued and returns once the loops have ended: at
// once when everything is written, or at the shutdown deadline, abandoning
// what is left. Call it once nothing adds any more.
func (p *persister) stop() error {
	close(p.ch)
	close(p.logCh)
	<-p.done
	<-p.logged
	if n := p.abandoned.Load(); n > 0 {
		return fmt.Errorf("%d store writes abandoned at the shutdown deadline; their changes are read again after a restart", n)
	}
	return nil
}

func (p *persister) loop() {
	defer close(p.done)
	batch := make([]item, 0, maxBatch)
	for it := range p.ch {
		batch = append(batch[:0], it)
	fill:
		for len(batch) < maxBatch {
			select {
			case it, ok := <-p.ch:
				if !ok {
					break fill
				}
				batch = append(batch, it)
			default:
				break fill
			}
		}
		p.write(batch)
	}
}

// abandon gives up the items of a batch at shutdown: they stay unsettled.
func (p *persister) abandon(items []item) {
	p.abandoned.Add(int64(len(items)))
	for _, it := range items {
		if it.keys != nil {
			it.keys.stored(it.d.Key)
		}
	}
}

// write stores a batch in one transaction, retrying with backoff until it
// commits: until then nothing in it is settled, and the source does not
// pass it. At the shutdown deadline the batch is abandoned.
func (p *persister) write(batch []item) {
	d := p.d
	runners := d.preclaim(batch) // marks what this instance sends itself
	var b store.Batch
	failed := map[*Endpoint]int{}
	fresh := false
	for _, it := range batch {
		if it.failures != nil {
			for i := range it.failures {
				b.Failures = append(b.Failures, storedFailure(&it.failures[i], d.log))
			}
			continue
		}
		b.Deliveries = append(b.Deliveries, it.d)
		if it.attempt != nil {
			b.Attempts = append(b.Attempts, *it.attempt)
		}
		if it.failedEndpoint != nil {
			failed[it.failedEndpoint]++
		}
		fresh = fresh || it.fresh
	}
	var claimed []store.Delivery
	write := func(ctx context.Context) (err error) {
		claimed, err = d.store.WriteBatch(ctx, b)
		return err
	}
	if !p.retry(write, len(b.Deliveries)) {
		d.unreserve(batch, runners)
		p.abandon(batch)
		return
	}
	d.hold(batch, runners, claimed)
	for _, it := range batch {
		if it.keys != nil {
			it.keys.stored(it.d.Key)
		}
		if it.failures == nil && !it.shared {
			outcome := "retrying"
			if it.d.Status == store.StatusFailed {
				outcome = "failed"
			}
			d.obs.Outcome(it.d.EndpointID, outcome)
		}
		it.tx.Done()
	}
	if fresh {
		d.signal()
	}
	now := time.Now()
	for ep, n := range failed {
		if h := d.health.failed(p.ctx, ep, n, now); failingTooLong(ep, h, now) {
			d.disable(p.ctx, ep, "failing continuously for "+ep.DisableAfter.String())
		}
	}
}

// retry runs write until it succeeds; it returns false when p.ctx ends
// first (the shutdown deadline).
func (p *persister) retry(write func(context.Context) error, deliveries int) bool {
	err := retryStore(p.ctx, 0, write, func(err error, wait time.Duration) {
		p.d.log.Error().Err(err).Int("deliveries", deliveries).Stringer("retry_in", wait).
			Msg("writing to the retry store failed; the source holds these changes until it succeeds")
	})
	return err == nil
}

// logLoop writes successful first attempts to the attempts log in batches.
// A failure to log is reported, not retried forever: the delivery itself
// was accepted and does not depend on it.
func (p *persister) logLoop() {
	defer close(p.logged)
	var ds []store.Delivery
	var as []store.Attempt
	for it := range p.logCh {
		ds, as = append(ds[:0], it.d), append(as[:0], *it.attempt)
	fill:
		for len(ds) < maxBatch {
			select {
			case it, ok := <-p.logCh:
				if !ok {
					break fill
				}
				ds, as = append(ds, it.d), append(as, *it.attempt)
			default:
				break fill
			}
		}
		ctx, cancel := context.WithTimeout(p.ctx, storeTimeout)
		if err := p.d.store.LogAttempts(ctx, ds, as); err != nil {
			p.d.log.Error().Err(err).Int("attempts", len(as)).Msg("writing successful attempts to the attempts log")
		}
		cancel()
	}
}

// storedFailure is a failed evaluation as the store keeps it, with what a
// replay needs.
func storedFailure(f *event.Failure, log zerolog.Logger) store.FailedEvaluation {
	replay, err := event.EncodeReplay(f)
	if err != nil {
		// Kept without it: listed, but it cannot be replayed.
		log.Error().Err(err).Str("rule", f.Rule).Stringer("lsn", f.CommitLSN).Int("position", f.Position).
			Msg("keeping a failed evaluation without its change")
	}
	return store.FailedEvaluation{
		Rule: f.Rule, Table: f.Table, Op: string(f.Op), XID: f.XID,
		CommitLSN: uint64(f.CommitLSN), EndLSN: uint64(f.EndLSN), Position: f.Position, Error: f.Error, Row: f.Row,
		Old: f.Old, EventType: f.EventType, EventID: f.EventID, Endpoint: f.Endpoint, Replay: replay,
	}
}
