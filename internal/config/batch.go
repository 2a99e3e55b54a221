package config

import "github.com/walhook/walhook/internal/endpointspec"

// batch reads an endpoint's batch block (the rules are
// internal/endpointspec's, shared with API webhooks); fields left out take
// their defaults.
func (d *decoder) batch(b *batchBlock) *Batch {
	out := DefaultBatch()
	if b.MaxEvents != nil {
		if err := endpointspec.CheckBatchEvents(*b.MaxEvents); err != nil {
			d.errorf(b.MaxEventsRange, "Invalid max_events", "%s.", err)
		} else {
			out.MaxEvents = *b.MaxEvents
		}
	}
	if present(b.MaxBytesRange) && !d.failed(b.MaxBytesRange) {
		if n, err := endpointspec.CheckBatchBytes(b.MaxBytes); err != nil {
			d.errorf(b.MaxBytesRange, "Invalid max_bytes", "%s.", err)
		} else {
			out.MaxBytes = n
		}
	}
	if present(b.MaxWaitRange) && !d.failed(b.MaxWaitRange) {
		if v, err := endpointspec.CheckBatchWait(b.MaxWait); err != nil {
			d.errorf(b.MaxWaitRange, "Invalid max_wait", "%s.", err)
		} else {
			out.MaxWait = v
		}
	}
	return out
}
