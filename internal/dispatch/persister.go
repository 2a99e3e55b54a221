package dispatch

import (
	"context"
	"errors"
	"time"

	"github.com/walhook/walhook/internal/event"
	"github.com/walhook/walhook/internal/settle"
	"github.com/walhook/walhook/internal/store"
)

// item is one write for the store; its transaction's delivery is settled
// once the write has committed.
type item struct {
	d       store.Delivery
	attempt *store.Attempt
	tx      *settle.Tx
	// fresh deliveries are due now: the retry loop is woken for them.
	fresh bool
	// failedEndpoint is set when a first attempt failed: its health is
	// updated with the batch.
	failedEndpoint *Endpoint
	// failures, when set, make this a failed-evaluations item (no delivery).
	failures []event.Failure
	// runner and key: an ordered key whose store write is in progress.
	r   *runner
	key string
}

// persister batches store writes. Batches form by themselves under load:
// it takes what is waiting, up to maxBatch, and writes it in one go.
type persister struct {
	d      *Dispatcher
	ch     chan item
	logCh  chan item
	done   chan struct{}
	logged chan struct{}
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

func (p *persister) start() {
	go p.loop()
	go p.logLoop()
}

// add queues an item; it waits while the queue is full (backpressure on
// the reader, which keeps the replication connection alive meanwhile).
func (p *persister) add(ctx context.Context, it item) error {
	select {
	case p.ch <- it:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// addOrdered queues a pending delivery of an ordered endpoint's key and
// notes the write in progress, so the key is not unblocked before the
// write is visible. The caller holds r.mu.
func (p *persister) addOrdered(ctx context.Context, r *runner, it item) error {
	it.r, it.key = r, it.d.Key
	r.persisting[it.key]++
	if err := p.add(ctx, it); err != nil {
		r.persisting[it.key]--
		return err
	}
	return nil
}

// addFailures queues failed evaluations settling one delivery of tx.
func (p *persister) addFailures(ctx context.Context, fs []event.Failure, tx *settle.Tx) error {
	select {
	case p.ch <- item{failures: fs, tx: tx}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// logSuccess queues a successful first attempt for the attempts log.
func (p *persister) logSuccess(d store.Delivery, a store.Attempt) {
	p.logCh <- item{d: d, attempt: &a}
}

// stop writes what is queued and returns once everything is written.
func (p *persister) stop(ctx context.Context) error {
	close(p.ch)
	close(p.logCh)
	select {
	case <-p.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	<-p.logged
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

// write stores a batch, retrying until it succeeds: until then nothing in
// it is settled, and the slot does not pass it.
func (p *persister) write(batch []item) {
	d := p.d
	var ds []store.Delivery
	var as []store.Attempt
	var fs []store.FailedEvaluation
	failed := map[*Endpoint]int{}
	fresh := false
	for _, it := range batch {
		if it.failures != nil {
			for _, f := range it.failures {
				fs = append(fs, store.FailedEvaluation{
					Rule: f.Rule, Table: f.Table, Op: string(f.Op), XID: f.XID,
					CommitLSN: uint64(f.CommitLSN), Position: f.Position, Error: f.Error, Row: f.Row,
				})
			}
			continue
		}
		ds = append(ds, it.d)
		if it.attempt != nil {
			as = append(as, *it.attempt)
		}
		if it.failedEndpoint != nil {
			failed[it.failedEndpoint]++
		}
		fresh = fresh || it.fresh
	}
	ctx := context.Background()
	for wait := 100 * time.Millisecond; ; wait = min(wait*2, 5*time.Second) {
		err := p.writeOnce(ctx, ds, as, fs)
		if err == nil {
			break
		}
		d.log.Error().Err(err).Int("deliveries", len(ds)).Dur("retry_in", wait).
			Msg("writing to the retry store failed; the slot holds these changes until it succeeds")
		time.Sleep(wait)
	}
	now := time.Now()
	for ep, n := range failed {
		if h := d.health.failed(ctx, ep, n, now); failingTooLong(ep, h, now) {
			d.disable(ctx, ep, "failing continuously for "+ep.DisableAfter.String())
		}
	}
	for _, it := range batch {
		if it.r != nil {
			it.r.mu.Lock()
			if it.r.persisting[it.key] <= 1 {
				delete(it.r.persisting, it.key)
			} else {
				it.r.persisting[it.key]--
			}
			it.r.mu.Unlock()
		}
		if it.failures == nil {
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
}

func (p *persister) writeOnce(ctx context.Context, ds []store.Delivery, as []store.Attempt, fs []store.FailedEvaluation) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var errs []error
	if len(ds) > 0 {
		errs = append(errs, p.d.store.Persist(ctx, ds))
	}
	if len(as) > 0 {
		errs = append(errs, p.d.store.LogAttempts(ctx, nil, as))
	}
	if len(fs) > 0 {
		errs = append(errs, p.d.store.RecordFailures(ctx, fs))
	}
	return errors.Join(errs...)
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
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := p.d.store.LogAttempts(ctx, ds, as); err != nil {
			p.d.log.Error().Err(err).Int("attempts", len(as)).Msg("writing successful attempts to the attempts log")
		}
		cancel()
	}
}
