package rules

import (
	"fmt"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/event"
	"github.com/zclconf/go-cty/cty"
)

// Timestamp formats an event time as the wire format does: RFC 3339 in UTC
// with a Z, fractional seconds only when present.
func Timestamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// DefaultBody is the default request body: {"id": ..., "type": ...,
// "timestamp": ..., "op": ..., "table": ..., "data": ...}, where op and
// table say what happened to which table (left out for outbox events).
func DefaultBody(ev *event.Event) []byte {
	b := make([]byte, 0, 128+len(ev.ID)+len(ev.Type)+len(ev.Table)+len(ev.Data))
	b = append(b, `{"id":`...)
	b = appendString(b, ev.ID)
	b = append(b, `,"type":`...)
	b = appendString(b, ev.Type)
	b = append(b, `,"timestamp":"`...)
	b = ev.Timestamp.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	if ev.Op != "" {
		b = append(b, `,"op":`...)
		b = appendString(b, string(ev.Op))
		b = append(b, `,"table":`...)
		b = appendString(b, ev.Table)
	}
	b = append(b, `,"data":`...)
	if len(ev.Data) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, ev.Data...)
	}
	return append(b, '}')
}

// RenderBody is the body ep sends for ev: DefaultBody, or ep's body
// expression evaluated with the variable event (id, type, timestamp, op,
// table, data, key, tenant) and written as JSON.
func RenderBody(ep *config.Endpoint, ev *event.Event) ([]byte, error) {
	if ep.Body == nil {
		return DefaultBody(ev), nil
	}
	data := nullVal
	if len(ev.Data) > 0 {
		var err error
		if data, err = jsonToCty(ev.Data); err != nil {
			return nil, fmt.Errorf("rendering the body of endpoint %q for event %s: %w", ep.Name, ev.ID, err)
		}
	}
	ctx := &hcl.EvalContext{
		Functions: functions,
		Variables: map[string]cty.Value{"event": cty.ObjectVal(map[string]cty.Value{
			"id":        cty.StringVal(ev.ID),
			"type":      cty.StringVal(ev.Type),
			"timestamp": cty.StringVal(Timestamp(ev.Timestamp)),
			"data":      data,
			"key":       cty.StringVal(ev.Key),
			"tenant":    cty.StringVal(ev.Tenant),
			"op":        cty.StringVal(string(ev.Op)),
			"table":     cty.StringVal(ev.Table),
		})},
	}
	v, diags := ep.Body.Value(ctx)
	if diags.HasErrors() {
		return nil, fmt.Errorf("rendering the body of endpoint %q for event %s: %w", ep.Name, ev.ID, diagError(diags))
	}
	if !v.IsWhollyKnown() {
		return nil, fmt.Errorf("rendering the body of endpoint %q for event %s: the result is not known", ep.Name, ev.ID)
	}
	b, err := appendCty(make([]byte, 0, 128+len(ev.Data)), v, bodyOrder)
	if err != nil {
		return nil, fmt.Errorf("rendering the body of endpoint %q for event %s: %w", ep.Name, ev.ID, err)
	}
	return b, nil
}

// bodyOrder puts a body object's usual fields first.
var bodyOrder = []string{"id", "event", "type", "timestamp", "op", "table", "data"}
