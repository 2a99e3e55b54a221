package admin

import (
	"bytes"
	"encoding/json"

	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/endpointspec"
	"github.com/walhook/walhook/internal/store"
)

// batchInput is a webhook's "batch" object: fields left out take the
// defaults of the config's batch block (docs/api.md).
type batchInput struct {
	MaxEvents *int   `json:"max_events"`
	MaxBytes  string `json:"max_bytes"`
	MaxWait   string `json:"max_wait"`
}

// batchView shows a webhook's batch, resolved.
type batchView struct {
	MaxEvents int    `json:"max_events"`
	MaxBytes  int    `json:"max_bytes"`
	MaxWait   string `json:"max_wait"`
}

// checkBatch validates a batch object (internal/endpointspec's rules) and
// returns it resolved; nil in, nil out (one event per request).
func checkBatch(in *batchInput) (*store.WebhookBatch, *apiError) {
	if in == nil {
		return nil, nil
	}
	d := config.DefaultBatch()
	out := &store.WebhookBatch{MaxEvents: d.MaxEvents, MaxBytes: d.MaxBytes, MaxWait: d.MaxWait}
	if in.MaxEvents != nil {
		if err := endpointspec.CheckBatchEvents(*in.MaxEvents); err != nil {
			return nil, invalid("batch", "batch: %v", err)
		}
		out.MaxEvents = *in.MaxEvents
	}
	if in.MaxBytes != "" {
		n, err := endpointspec.CheckBatchBytes(in.MaxBytes)
		if err != nil {
			return nil, invalid("batch", "batch: %v", err)
		}
		out.MaxBytes = n
	}
	if in.MaxWait != "" {
		v, err := endpointspec.CheckBatchWait(in.MaxWait)
		if err != nil {
			return nil, invalid("batch", "batch: %v", err)
		}
		out.MaxWait = v
	}
	return out, nil
}

// patchBatch reads PATCH's "batch": an object sets the batch (its fields
// left out take the defaults), false removes it; set is false when the
// field is absent or null (the batch is kept).
func patchBatch(raw json.RawMessage) (b *store.WebhookBatch, set bool, e *apiError) {
	switch t := bytes.TrimSpace(raw); {
	case len(t) == 0 || bytes.Equal(t, []byte("null")):
		return nil, false, nil
	case bytes.Equal(t, []byte("false")):
		return nil, true, nil
	}
	var in batchInput
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return nil, false, invalid("batch", "batch is an object {\"max_events\", \"max_bytes\", \"max_wait\"}, or false to send one event per request")
	}
	b, e = checkBatch(&in)
	return b, e == nil, e
}

// viewBatch shows a stored batch; nil for none.
func viewBatch(b *store.WebhookBatch) *batchView {
	if b == nil {
		return nil
	}
	return &batchView{MaxEvents: b.MaxEvents, MaxBytes: b.MaxBytes, MaxWait: b.MaxWait.String()}
}
