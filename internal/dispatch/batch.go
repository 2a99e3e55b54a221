package dispatch

import (
	"net/http"
	"time"

	"github.com/walhook/walhook/internal/store"
)

// Batches (docs/config.md, "batch"; the wire format in README.md,
// "Batches"): on an endpoint with a batch, a lane worker takes up to
// MaxEvents queued jobs (up to MaxBytes of their bodies), waiting at most
// MaxWait for more, and sends them in one request, signed once as the
// batch: webhook-id is store.BatchID of the deliveries' ids, so the same
// deliveries sent together again carry the same id. The request takes one
// slot of the endpoint's gate. Each delivery keeps its own attempt (with
// the request's status) and its own outcome: accepted, each is settled;
// failed, each goes to the retry store like a failed single attempt, and
// is retried alone, in a batch body of one whose id is stable across its
// retries. On an ordered endpoint the lane has one worker and jobs keep
// their lane order; each asks the ledger before it joins the request, as a
// single attempt does.

// batchType is the type a batch request is signed as (X-Webhook-Event in
// the schemes that send one) and the body's "type".
const batchType = "batch"

// gather takes, after first, the jobs of q that join its batch: up to
// b.MaxEvents, up to b.MaxBytes of bodies (one larger job goes alone),
// waiting until first was taken plus b.MaxWait for more. A job that would
// pass MaxBytes is returned as carry: the worker sends it next, before
// anything else of its lane. It never holds a lock.
func gather(q chan *job, first *job, b *Batching) (jobs []*job, carry *job) {
	jobs = append(make([]*job, 0, min(b.MaxEvents, 64)), first)
	size := len(first.body)
	deadline := time.Now().Add(b.MaxWait)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for len(jobs) < b.MaxEvents {
		var j *job
		ok := true
		select {
		case j, ok = <-q:
		default:
			wait := time.Until(deadline)
			if wait <= 0 {
				return jobs, nil
			}
			if timer == nil {
				timer = time.NewTimer(wait)
			}
			select {
			case j, ok = <-q:
			case <-timer.C:
				return jobs, nil
			}
		}
		if !ok {
			return jobs, nil // closed: the worker sees it on its next receive
		}
		if size+len(j.body) > b.MaxBytes {
			return jobs, j
		}
		jobs = append(jobs, j)
		size += len(j.body)
	}
	return jobs, nil
}

// firstBatch makes the first attempt of jobs (all of one endpoint) as one
// request. No lock is held at any point.
func (d *Dispatcher) firstBatch(r *runner, jobs []*job) {
	send := jobs[:0:0]
	for _, j := range jobs {
		if r.keys != nil && !r.keys.beginAttempt(j.key) {
			// An earlier delivery of the key went to the store: queue behind it.
			d.persist.hand(d.storeCtx, item{d: newDelivery(j, store.StatusPending, ""), tx: j.tx, fresh: true, keys: r.keys})
			continue
		}
		send = append(send, j)
	}
	if len(send) == 0 {
		return
	}
	ep := send[0].ep
	ctx := d.sendCtx
	if ctx.Err() != nil || d.health.disabled(ep.ID) {
		status, reason := store.StatusPending, ""
		if ctx.Err() == nil {
			status, reason = store.StatusFailed, "endpoint disabled"
		}
		for _, j := range send {
			d.storeFromMemory(r, j, item{d: newDelivery(j, status, reason), tx: j.tx, fresh: true})
		}
		return
	}

	parts := make([]batchPart, len(send))
	ids := make([]string, len(send))
	bodies := make([][]byte, len(send))
	for i, j := range send {
		parts[i] = batchPart{deliveryID: store.DeliveryID(j.ev.ID, j.ep.ID), eventID: j.ev.ID, eventType: j.ev.Type, tenant: j.ev.Tenant}
		ids[i], bodies[i] = parts[i].deliveryID, j.body
	}
	id := store.BatchID(ids)
	// On an unordered endpoint a stored batch keeps its id, so that its
	// retries go out together under it; an ordered endpoint's are retried
	// one at a time behind their keys.
	storedBatch := ""
	if r.keys == nil {
		storedBatch = id
	}
	m := message{deliveryID: ids[0], id: parts[0].eventID, typ: parts[0].eventType, tenant: parts[0].tenant, number: 1,
		wireID: id, wireType: batchType, body: batchBody(id, time.Now(), bodies), batch: parts}
	a, res, err := d.attempt(ctx, r.gate, ep, m)
	if err != nil {
		// Cut short by our own shutdown: not the endpoint's failure.
		for _, j := range send {
			dl := newDelivery(j, store.StatusPending, "")
			dl.BatchID = storedBatch
			d.storeFromMemory(r, j, item{d: dl, tx: j.tx, fresh: true})
		}
		return
	}
	if res.OK() {
		for i, j := range send {
			if r.keys != nil {
				r.keys.finished(j.key)
			}
			j.tx.Done()
			if d.opts.LogAttempts {
				dl := newDelivery(j, store.StatusDelivered, "")
				dl.Attempts, dl.LastStatus = 1, res.StatusCode
				d.persist.logSuccess(d.storeCtx, dl, parts[i].attempt(a))
			}
		}
		d.health.succeeded(d.storeCtx, ep.ID)
		return
	}

	// One outcome for the whole batch: its deliveries come due together.
	status, next, disable := store.StatusPending, time.Time{}, ""
	if res.StatusCode == http.StatusGone {
		status, disable = store.StatusFailed, "endpoint answered 410 Gone"
	} else if delay, ok := nextDelay(ep.Retry, 1, res.RetryAfter); ok {
		next = a.AttemptedAt.Add(delay)
	} else {
		status = store.StatusFailed
	}
	for i, j := range send {
		dl := newDelivery(j, status, "")
		dl.Attempts, dl.LastStatus, dl.LastError = 1, res.StatusCode, res.ErrorText()
		if !next.IsZero() {
			dl.NextAttemptAt = next
		}
		dl.BatchID = storedBatch
		ja := parts[i].attempt(a)
		it := item{d: dl, attempt: &ja, tx: j.tx}
		if i == 0 {
			it.failedEndpoint = ep // one request failed: one failure of the endpoint
		}
		d.storeFromMemory(r, j, it)
	}
	d.log.Debug().Str("endpoint", ep.Name).Str("batch_id", id).Int("events", len(send)).Int("status", res.StatusCode).
		Str("error", res.ErrorText()).Msg("first attempt of a batch failed; its deliveries stored for retry")
	if disable != "" {
		d.disable(d.storeCtx, ep, disable)
	}
}

// batchPart is one delivery of a batch request, as its attempt is logged.
type batchPart struct {
	deliveryID, eventID, eventType, tenant string
}

// attempt is a batch request's attempt as the attempt of p's delivery.
func (p batchPart) attempt(a store.Attempt) store.Attempt {
	a.DeliveryID, a.EventID, a.EventType = p.deliveryID, p.eventID, p.eventType
	return a
}

// asBatchOfOne makes m, one delivery's attempt to a batch endpoint (a
// retry, a test event), a batch of that delivery alone: its id depends on
// the delivery only, so it is the same on every retry.
func (m *message) asBatchOfOne(at time.Time) {
	m.wireID, m.wireType = store.BatchID([]string{m.deliveryID}), batchType
	m.body = batchBody(m.wireID, at, [][]byte{m.body})
	m.memo = nil // the memo is for the event's own body
}

// batchBody is {"type":"batch","id":id,"timestamp":at,"data":[bodies…]},
// each body as the endpoint renders it for one event.
func batchBody(id string, at time.Time, bodies [][]byte) []byte {
	n := 96 + len(id) + len(bodies)
	for _, b := range bodies {
		n += len(b)
	}
	b := make([]byte, 0, n)
	b = append(b, `{"type":"batch","id":"`...)
	b = append(b, id...) // "bat_" and base32: nothing to escape
	b = append(b, `","timestamp":"`...)
	b = at.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","data":[`...)
	for i, body := range bodies {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, body...)
	}
	return append(b, "]}"...)
}
