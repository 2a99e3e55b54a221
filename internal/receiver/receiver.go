// Package receiver is a webhook receiver that verifies each request's
// signature and records it: the server behind `walhook listen`, the demo's
// endpoint, and the endpoint of end-to-end tests.
package receiver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/walhook/walhook/internal/signing"
)

// DefaultMaxBodyBytes caps a request body unless Options say otherwise.
const DefaultMaxBodyBytes = 10 << 20

// Options configures a Receiver.
type Options struct {
	Scheme          string   // signing scheme; "" is standard-webhooks
	Secrets         []string // any may verify; none: signatures are not checked
	SignatureHeader string   // the scheme's renamed signature header, if any
	// Tolerance bounds the signed timestamp's age: 0 is 5 minutes,
	// negative disables the check.
	Tolerance time.Duration
	Out       io.Writer // each request is pretty-printed here; nil: quiet
	Color     bool      // ANSI colours in Out
	// Fail, if set, sees each verified-or-not request and may return a
	// status to answer instead (to simulate a failing endpoint); 0 keeps
	// the normal answer.
	Fail         func(r *Received) int
	MaxBodyBytes int64 // default 10 MiB
}

// Received is one recorded request.
type Received struct {
	At      time.Time
	ID      string // webhook-id or X-Webhook-Id, else the body's "id"
	Type    string // X-Webhook-Event, else the body's "type" or "event"
	Attempt int    // from a Webhook-Attempt or X-Webhook-Attempt header; 0 if absent
	Header  http.Header
	Body    []byte
	// Verified is true when a secret verified the signature; with no
	// secrets it stays false and VerifyErr is nil.
	Verified  bool
	VerifyErr error
	Status    int // the status answered
}

// Receiver is an http.Handler that verifies, records and answers webhook
// requests. It is safe for concurrent use.
type Receiver struct {
	opts Options

	mu       sync.Mutex
	received []Received
	changed  chan struct{} // closed and replaced on every record
	subs     map[*subscriber]struct{}

	outMu sync.Mutex
}

var _ http.Handler = (*Receiver)(nil)

// subscriber is one Subscribe channel; sends counts sends in flight so the
// channel is closed only after the last.
type subscriber struct {
	ch    chan Received
	done  chan struct{}
	sends sync.WaitGroup
}

// New returns a Receiver.
func New(opts Options) *Receiver {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	return &Receiver{opts: opts, changed: make(chan struct{}), subs: map[*subscriber]struct{}{}}
}

// ServeHTTP verifies and records a POST and answers 204, or 401 when the
// signature does not verify, or what Options.Fail says. Other methods are
// not recorded: GET and HEAD get a short notice, the rest 405.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	switch req.Method {
	case http.MethodPost:
	case http.MethodGet, http.MethodHead:
		io.WriteString(w, "walhook receiver: POST webhooks here\n")
		return
	default:
		w.Header().Set("Allow", "POST, GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	rec := Received{At: time.Now(), Header: req.Header.Clone()}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, r.opts.MaxBodyBytes))
	rec.Body = body
	rec.ID, rec.Type = identify(req.Header, body)
	rec.Attempt = attempt(req.Header)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		rec.VerifyErr = fmt.Errorf("body larger than %d bytes", tooLarge.Limit)
		rec.Status = http.StatusRequestEntityTooLarge
	case err != nil:
		rec.VerifyErr = fmt.Errorf("reading body: %w", err)
		rec.Status = http.StatusBadRequest
	case len(r.opts.Secrets) > 0:
		rec.VerifyErr = signing.VerifyWith(r.opts.Scheme, r.opts.Secrets, signing.Options{SignatureHeader: r.opts.SignatureHeader},
			req.Header, body, rec.At, r.opts.Tolerance)
		rec.Verified = rec.VerifyErr == nil
		if !rec.Verified {
			rec.Status = http.StatusUnauthorized
		}
	}
	if rec.Status == 0 {
		rec.Status = http.StatusNoContent
	}
	if r.opts.Fail != nil {
		if status := r.opts.Fail(&rec); status != 0 {
			rec.Status = status
		}
	}
	r.record(req.Context(), rec)
	r.print(rec)
	if rec.Status == http.StatusNoContent {
		w.WriteHeader(rec.Status)
		return
	}
	msg := http.StatusText(rec.Status)
	if rec.VerifyErr != nil {
		msg = rec.VerifyErr.Error()
	}
	http.Error(w, msg, rec.Status)
}

// identify finds the event id and type in the headers or the body.
func identify(h http.Header, body []byte) (id, typ string) {
	id = firstHeader(h, signing.HeaderWebhookID, signing.HeaderID)
	typ = h.Get(signing.HeaderEvent)
	if id != "" && typ != "" {
		return id, typ
	}
	var fields struct {
		ID    json.RawMessage `json:"id"`
		Type  string          `json:"type"`
		Event string          `json:"event"`
	}
	if json.Unmarshal(body, &fields) != nil {
		return id, typ
	}
	if id == "" {
		var s string
		if json.Unmarshal(fields.ID, &s) == nil {
			id = s
		} else {
			id = string(fields.ID)
		}
	}
	if typ == "" {
		typ = fields.Type
	}
	if typ == "" {
		typ = fields.Event
	}
	return id, typ
}

func attempt(h http.Header) int {
	n, _ := strconv.Atoi(firstHeader(h, "Webhook-Attempt", "X-Webhook-Attempt"))
	return n
}

func firstHeader(h http.Header, names ...string) string {
	for _, n := range names {
		if v := h.Get(n); v != "" {
			return v
		}
	}
	return ""
}

// record stores rec, wakes WaitFor and hands rec to subscribers.
func (r *Receiver) record(ctx context.Context, rec Received) {
	r.mu.Lock()
	r.received = append(r.received, rec)
	close(r.changed)
	r.changed = make(chan struct{})
	subs := make([]*subscriber, 0, len(r.subs))
	for s := range r.subs {
		s.sends.Add(1)
		subs = append(subs, s)
	}
	r.mu.Unlock()
	for _, s := range subs {
		select {
		case s.ch <- rec:
		case <-s.done:
		case <-ctx.Done():
		}
		s.sends.Done()
	}
}

// Received returns the requests recorded so far, in arrival order.
func (r *Receiver) Received() []Received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Received(nil), r.received...)
}

// WaitFor blocks until at least n requests are recorded or ctx is done.
func (r *Receiver) WaitFor(ctx context.Context, n int) error {
	for {
		r.mu.Lock()
		have, changed := len(r.received), r.changed
		r.mu.Unlock()
		if have >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d webhooks, received %d: %w", n, have, context.Cause(ctx))
		}
	}
}

// Subscribe returns a channel that receives each request recorded from
// now on, until ctx is done; then the channel is closed. A subscriber that
// does not read holds up the handler of the request being recorded.
func (r *Receiver) Subscribe(ctx context.Context) <-chan Received {
	s := &subscriber{ch: make(chan Received, 256), done: make(chan struct{})}
	r.mu.Lock()
	r.subs[s] = struct{}{}
	r.mu.Unlock()
	go func() {
		<-ctx.Done()
		r.mu.Lock()
		delete(r.subs, s)
		r.mu.Unlock()
		close(s.done)
		s.sends.Wait()
		close(s.ch)
	}()
	return s.ch
}
