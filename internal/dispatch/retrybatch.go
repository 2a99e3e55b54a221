package dispatch

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/walhook/walhook/internal/sender"
	"github.com/walhook/walhook/internal/store"
)

// Retries of a failed batch (batch.go): its deliveries were stored with
// the batch's id and come due together. The retry loop groups what a
// claim returns by batch, claims the batch's other due deliveries with it
// (Store.ClaimBatchMates), and sends each group as one request under the
// batch's id, taking one retry slot of the endpoint and one retry worker.
// A group carries what of the batch is still pending and not held by
// another claimer: receivers deduplicate by the event ids inside.

// groupBatches splits claimed deliveries into what one retry worker sends:
// a batch's deliveries (with their mates claimed now) together, ordered by
// seq, and every other delivery alone. When the store cannot say which
// batches the deliveries belong to, each goes alone (a batch of one).
func (d *Dispatcher) groupBatches(ctx context.Context, ds []store.Delivery) [][]store.Delivery {
	var ids []string
	for _, dl := range ds {
		if ep := d.Endpoint(dl.EndpointID); ep != nil && ep.Batching != nil && !ep.Ordered {
			ids = append(ids, dl.ID)
		}
	}
	var batchOf map[string]string
	var mates []store.Delivery
	if len(ids) > 0 {
		cctx, cancel := context.WithTimeout(ctx, storeTimeout)
		var err error
		batchOf, mates, err = d.store.ClaimBatchMates(cctx, ids, d.lease())
		cancel()
		if err != nil && ctx.Err() == nil {
			d.log.Warn().Err(err).Int("deliveries", len(ids)).Msg("reading the batches of claimed retries; each is sent alone")
		}
	}
	groups := make([][]store.Delivery, 0, len(ds))
	at := map[[2]string]int{} // endpoint, batch -> index in groups
	add := func(dl store.Delivery) {
		if dl.BatchID == "" {
			groups = append(groups, []store.Delivery{dl})
			return
		}
		k := [2]string{dl.EndpointID, dl.BatchID}
		if i, ok := at[k]; ok {
			groups[i] = append(groups[i], dl)
			return
		}
		at[k] = len(groups)
		groups = append(groups, []store.Delivery{dl})
	}
	for _, dl := range ds {
		dl.BatchID = batchOf[dl.ID]
		add(dl)
	}
	for _, dl := range mates {
		add(dl)
	}
	for _, g := range groups {
		if len(g) > 1 {
			slices.SortFunc(g, func(a, b store.Delivery) int { return int(a.Seq - b.Seq) })
		}
	}
	return groups
}

// retryBatch makes one attempt of a stored batch's deliveries g (of one
// endpoint, with one batch id) as one request under the batch's id, and
// records each delivery's outcome: the same for all, so they stay due
// together. r is the endpoint's runner, nil when the endpoint no longer
// exists; attempted is called once the endpoint no longer serves the
// attempt.
func (d *Dispatcher) retryBatch(ctx context.Context, comp *completer, r *runner, g []store.Delivery, attempted func()) {
	bg := d.storeCtx
	ep := d.Endpoint(g[0].EndpointID)
	now := time.Now()
	if ep == nil || r == nil {
		for _, dl := range g {
			d.complete(bg, comp, nil, dl, store.Attempt{AttemptedAt: now, Error: "endpoint no longer exists; not sent"}, store.Outcome{Status: store.StatusFailed})
		}
		return
	}
	if !ep.Active || d.health.disabledFresh(bg, ep.ID) {
		for _, dl := range g {
			d.complete(bg, comp, ep, dl, store.Attempt{AttemptedAt: now, Error: "endpoint disabled; not sent"}, store.Outcome{Status: store.StatusFailed})
		}
		return
	}
	if until := r.gate.PausedUntil(); until.After(now) {
		for _, dl := range g {
			d.postpone(bg, dl, until)
		}
		return
	}
	n := 0
	parts := make([]batchPart, len(g))
	bodies := make([][]byte, len(g))
	for i, dl := range g {
		n = max(n, dl.Attempts+1)
		parts[i] = batchPart{deliveryID: dl.ID, eventID: dl.EventID, eventType: dl.EventType, tenant: dl.Tenant}
		bodies[i] = dl.Body
	}
	id := g[0].BatchID
	m := message{deliveryID: g[0].ID, id: g[0].EventID, typ: g[0].EventType, tenant: g[0].Tenant, number: n,
		wireID: id, wireType: batchType, body: batchBody(id, now, bodies), batch: parts}
	a, res, err := d.attempt(ctx, r.gate, ep, m)
	attempted()
	if err != nil {
		return // our shutdown: the leases expire and the deliveries are due again
	}
	out, disable := retryOutcome(ep, n, res, a)
	for i, dl := range g {
		da := a
		da.Number = dl.Attempts + 1
		if i > 0 {
			d.complete(bg, comp, ep, dl, da, out)
			continue
		}
		d.complete(bg, comp, ep, dl, da, out, func(h store.Health) {
			if disable == "" && !res.OK() && failingTooLong(ep, h, time.Now()) {
				disable = "failing continuously for " + ep.DisableAfter.String()
			}
			if disable != "" {
				d.disable(bg, ep, disable)
			}
		})
	}
}

// retryOutcome is what retry number n (its attempt a, its result res)
// leaves a stored delivery as, and why the endpoint is to be disabled
// (empty: it is not).
func retryOutcome(ep *Endpoint, n int, res sender.Result, a store.Attempt) (store.Outcome, string) {
	switch {
	case res.OK():
		return store.Outcome{Status: store.StatusDelivered}, ""
	case res.StatusCode == http.StatusGone:
		return store.Outcome{Status: store.StatusFailed}, "endpoint answered 410 Gone"
	}
	if delay, ok := nextDelay(ep.Retry, n, res.RetryAfter); ok {
		return store.Outcome{Status: store.StatusPending, NextAttemptAt: a.AttemptedAt.Add(delay)}, ""
	}
	return store.Outcome{Status: store.StatusFailed}, ""
}

// sharedBatches gives the jobs of each unordered batching endpoint batch
// ids, in order, each batch at most the endpoint's MaxEvents and MaxBytes.
// With share = "all" nothing waits in a lane to be gathered, so a batch is
// what one dispatched batch (a source transaction, or a piece of a large
// one) holds for the endpoint; the deliveries are stored with its id, and
// whichever instance claims one sends the batch as one request (see
// groupBatches). An ordered endpoint's deliveries are sent one at a time
// behind their keys, as its retries are.
func sharedBatches(jobs []*job) {
	type open struct {
		jobs  []*job
		bytes int
	}
	seal := func(o *open) {
		if len(o.jobs) < 2 {
			return // alone: a batch of one needs no id in the store
		}
		ids := make([]string, len(o.jobs))
		for i, j := range o.jobs {
			ids[i] = store.DeliveryID(j.ev.ID, j.ep.ID)
		}
		id := store.BatchID(ids)
		for _, j := range o.jobs {
			j.batchID = id
		}
	}
	cur := map[*Endpoint]*open{}
	for _, j := range jobs {
		b := j.ep.Batching
		if b == nil || j.ep.Ordered {
			continue
		}
		o := cur[j.ep]
		if o != nil && (len(o.jobs) >= b.MaxEvents || o.bytes+len(j.body) > b.MaxBytes) {
			seal(o)
			o = nil
		}
		if o == nil {
			o = &open{}
			cur[j.ep] = o
		}
		o.jobs = append(o.jobs, j)
		o.bytes += len(j.body)
	}
	for _, o := range cur {
		seal(o)
	}
}
