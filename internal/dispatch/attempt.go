package dispatch

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/walhook/walhook/internal/event"
	"github.com/walhook/walhook/internal/limit"
	"github.com/walhook/walhook/internal/sender"
	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/internal/store"
)

// message is what one attempt sends.
type message struct {
	deliveryID string
	id, typ    string
	body       []byte
	tenant     string
	number     int // 1 for the first attempt
	// memo is shared by the first attempts of one event to several
	// endpoints, so a shared secret signs a shared body once; nil: none.
	memo *signing.Memo
	// logged is set when the attempt is logged whatever its outcome (test
	// events), so its request headers are kept.
	logged bool
	// wireID and wireType, when set, are what the request is signed as
	// (a batch: its id and "batch"); empty: id and typ.
	wireID, wireType string
	// batch, when set, are the deliveries a batch request carries: the
	// attempt is reported to the observer once per delivery.
	batch []batchPart
}

// errCanceled is an attempt cut short by our own shutdown: not the
// endpoint's failure, and not reported as an attempt.
var errCanceled = errors.New("attempt canceled by shutdown")

// attempt is the one place where an attempt to an endpoint starts and
// finishes, for first attempts, retries and test events alike: it is
// admitted by the endpoint's gate (nil: none) — a slot under its adaptive
// concurrency limit, the end of a Retry-After pause, a token of its rate
// limit — signs and posts m, tells the gate how the attempt went (latency,
// 429/503, timeouts move the limit), and reports the attempt to the
// observer.
func (d *Dispatcher) attempt(ctx context.Context, g *limit.Gate, ep *Endpoint, m message) (store.Attempt, sender.Result, error) {
	var permit limit.Permit // zero without a gate: Done and Cancel do nothing
	if g != nil {
		var err error
		if permit, err = g.Acquire(ctx); err != nil {
			return store.Attempt{}, sender.Result{}, errCanceled
		}
	}
	started := time.Now()
	h := make(http.Header, len(ep.Header)+6) // the signature's 3 or 4, Webhook-Attempt, the sender's 2
	for k, v := range ep.Header {
		h[k] = v
	}
	h["Webhook-Attempt"] = attemptNumber(m.number)
	if ep.Signer != nil {
		id, typ := m.id, m.typ
		if m.wireID != "" {
			id, typ = m.wireID, m.wireType
		}
		ep.Signer.Sign(h, signing.Message{ID: id, Type: typ, Timestamp: started, Body: m.body, Memo: m.memo})
	}
	res := ep.Client.Send(ctx, sender.Request{URL: ep.URL, Header: h, Body: m.body, Timeout: ep.Timeout})
	if res.Err != nil && ctx.Err() != nil {
		permit.Cancel() // says nothing about the endpoint
		return store.Attempt{}, res, errCanceled
	}
	permit.Done(res)
	a := store.Attempt{
		DeliveryID:  m.deliveryID,
		EventID:     m.id,
		EventType:   m.typ,
		EndpointID:  ep.ID,
		Number:      m.number,
		AttemptedAt: started,
		Duration:    res.Duration,
		StatusCode:  res.StatusCode,
		Response:    string(res.Response),
		Connected:   res.NewConn,
	}
	if !res.OK() {
		a.Error = res.ErrorText()
	}
	if !res.OK() || m.logged || d.opts.LogAttempts {
		// Only attempts that go to the log keep their headers: a
		// successful first attempt is not logged by default.
		a.RequestHeaders = loggedHeaders(ep, h)
	}
	if m.batch == nil {
		d.obs.Attempted(a, m.tenant)
	} else {
		for _, p := range m.batch {
			d.obs.Attempted(p.attempt(a), p.tenant)
		}
	}
	return a, res, nil
}

// attemptNumbers are the Webhook-Attempt values of the first attempts,
// shared read-only by every request (net/http does not modify a request's
// header).
var attemptNumbers = func() [][]string {
	v := make([][]string, 16)
	for i := range v {
		v[i] = []string{strconv.Itoa(i)}
	}
	return v
}()

// attemptNumber is the Webhook-Attempt header value of attempt n.
func attemptNumber(n int) []string {
	if n >= 0 && n < len(attemptNumbers) {
		return attemptNumbers[n][:1:1]
	}
	return []string{strconv.Itoa(n)}
}

// What the attempts log shows instead of a header value that may be a
// credential: a config endpoint's own headers (the config file may give
// them secrets) and the credential headers of any endpoint (the sender
// turns a URL's user:password into Authorization).
const (
	maskedConfig     = "(set in the config file)"
	maskedCredential = "(credentials, not shown)"
)

// loggedHeaders is h, as sent, the way the attempts log keeps it: one value
// per name (joined by ", "), credentials masked. The signature headers are
// kept: they are not secret, and they let the endpoint's owner check their
// verification against what was sent. h is only read: Send has returned.
func loggedHeaders(ep *Endpoint, h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for k, vs := range h {
		switch _, own := ep.Header[k]; {
		case own && ep.Source == "config":
			out[k] = maskedConfig
		case k == "Authorization" || k == "Proxy-Authorization" || k == "Cookie":
			out[k] = maskedCredential
		default:
			out[k] = strings.Join(vs, ", ")
		}
	}
	return out
}

// SendTest sends ev (a webhook.test event) to ep now, even when ep is
// disabled, through the same attempt path as deliveries (signed, with
// Webhook-Attempt, counted against the endpoint's in-flight limit), and
// logs the attempt.
func (d *Dispatcher) SendTest(ctx context.Context, ep *Endpoint, ev *event.Event) (store.Attempt, error) {
	body, err := ep.Body(ev)
	if err != nil {
		return store.Attempt{}, fmt.Errorf("rendering the test event for %s: %w", ep.Name, err)
	}
	var g *limit.Gate
	d.mu.Lock()
	if r := d.runners[ep.ID]; r != nil {
		g = r.gate
	}
	d.mu.Unlock()
	m := message{deliveryID: store.DeliveryID(ev.ID, ep.ID), id: ev.ID, typ: ev.Type, body: body, tenant: ev.Tenant, number: 1, logged: true}
	if ep.Batching != nil {
		m.asBatchOfOne(time.Now())
	}
	a, _, err := d.attempt(ctx, g, ep, m)
	if err != nil {
		return store.Attempt{}, fmt.Errorf("sending a test event to %s: %w", ep.Name, ctx.Err())
	}
	if err := d.store.LogAttempts(ctx, nil, []store.Attempt{a}); err != nil {
		d.log.Warn().Err(err).Str("endpoint_id", ep.ID).Msg("logging a test attempt")
	}
	return a, nil
}
