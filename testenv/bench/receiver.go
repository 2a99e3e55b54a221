package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// The receiver runs in its own process (this binary, "receive" mode) so
// that its CPU is measured apart from walhook's. Every request to
// /hook/<name> is verified with the official Standard Webhooks library
// against the secret of <name>; it answers 204, or 401 when the signature
// does not verify.

// receiverStats is what GET /stats answers.
type receiverStats struct {
	Received   int `json:"received"` // distinct (endpoint, webhook-id, or event id in a batch) verified
	Requests   int `json:"requests"`
	Duplicates int `json:"duplicates"`
	Bad        int `json:"bad"` // failed verification
	Refused    int `json:"refused"`
	// After the first 5 s since the first request: answered 2xx / 429.
	OKAfter5s      int     `json:"ok_after_5s"`
	RefusedAfter5s int     `json:"refused_after_5s"`
	P50ms          float64 `json:"p50_ms"` // commit-to-delivery (body timestamp to receipt)
	P99ms          float64 `json:"p99_ms"`
	MaxMs          float64 `json:"max_ms"`
	// ByType counts the distinct deliveries verified per event type.
	ByType map[string]int `json:"by_type"`
	// Protos counts the webhook requests per protocol ("HTTP/1.1", "HTTP/2.0").
	Protos map[string]int `json:"protos"`
}

type receiver struct {
	hooks     map[string]*standardwebhooks.Webhook
	delay     time.Duration
	perSecond int // above it answer 429 with Retry-After: 1; 0: no limit
	// latencyType, when set, limits the latencies recorded to events of
	// that type.
	latencyType string

	mu      sync.Mutex
	seen    map[string]struct{}
	stats   receiverStats
	lat     []time.Duration
	first   time.Time
	window  int64
	inWin   int
	waiters []waiter
}

// waiter waits for n distinct deliveries, of type typ when it is set.
type waiter struct {
	n   int
	typ string
	ch  chan struct{}
}

func runReceiver(args []string) error {
	fs := flag.NewFlagSet("receive", flag.ExitOnError)
	secrets := fs.String("secrets", "", "JSON file: endpoint name -> whsec_ secret")
	delay := fs.Duration("delay", 0, "answer every request after this long")
	perSecond := fs.Int("rate", 0, "answer 429 (Retry-After: 1) beyond this many requests per second")
	latencyType := fs.String("latency-type", "", "record commit-to-delivery latencies of this event type only")
	tlsMode := fs.String("tls", "", "serve HTTPS with a self-signed certificate: h1 (HTTP/1.1 only) or h2 (HTTP/2 offered)")
	caOut := fs.String("ca-out", "", "with -tls: write the certificate (PEM) here, for walhook's delivery.ca_file")
	_ = fs.Parse(args)
	raw, err := os.ReadFile(*secrets)
	if err != nil {
		return fmt.Errorf("reading secrets: %w", err)
	}
	var byName map[string]string
	if err := json.Unmarshal(raw, &byName); err != nil {
		return fmt.Errorf("parsing secrets: %w", err)
	}
	r := &receiver{hooks: map[string]*standardwebhooks.Webhook{}, delay: *delay, perSecond: *perSecond, latencyType: *latencyType,
		seen: map[string]struct{}{}, stats: receiverStats{ByType: map[string]int{}, Protos: map[string]int{}}}
	for name, s := range byName {
		wh, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			return fmt.Errorf("secret of %s: %w", name, err)
		}
		r.hooks[name] = wh
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /hook/{name}", r.hook)
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) { _ = json.NewEncoder(w).Encode(r.snapshot()) })
	mux.HandleFunc("GET /wait", r.wait)
	srv := &http.Server{Handler: mux}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if *tlsMode != "" {
		if err := serveTLS(srv, *tlsMode, *caOut); err != nil {
			return err
		}
	}
	fmt.Println(ln.Addr().String()) // the bench reads it, then the certificate
	if *tlsMode == "" {
		err = srv.Serve(ln)
	} else {
		err = srv.ServeTLS(ln, "", "")
	}
	if err != http.ErrServerClosed {
		return err
	}
	return nil
}

func (r *receiver) hook(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 80<<20)) // a batch may hold 64 MB
	now := time.Now()
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	name := req.PathValue("name")
	r.mu.Lock()
	if r.first.IsZero() {
		r.first = now
	}
	r.stats.Requests++
	late := now.Sub(r.first) > 5*time.Second
	if r.perSecond > 0 {
		if sec := now.Unix(); sec != r.window {
			r.window, r.inWin = sec, 0
		}
		r.inWin++
		if r.inWin > r.perSecond {
			r.stats.Refused++
			if late {
				r.stats.RefusedAfter5s++
			}
			r.mu.Unlock()
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
	}
	r.mu.Unlock()

	wh := r.hooks[name]
	if wh == nil || wh.Verify(body, req.Header) != nil {
		r.mu.Lock()
		r.stats.Bad++
		r.mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	// A batch ({"type":"batch","data":[…]}) counts each event inside by
	// its id; a single event counts by its webhook-id.
	type eventBody struct {
		ID        string    `json:"id"`
		Type      string    `json:"type"`
		Timestamp time.Time `json:"timestamp"`
	}
	var ev struct {
		eventBody
		Data json.RawMessage `json:"data"`
	}
	_ = json.Unmarshal(body, &ev)
	events := []eventBody{ev.eventBody}
	keys := []string{name + "/" + req.Header.Get("webhook-id")}
	if ev.Type == "batch" {
		events, keys = nil, nil
		_ = json.Unmarshal(ev.Data, &events)
		for _, e := range events {
			keys = append(keys, name+"/"+e.ID)
		}
	}
	if r.delay > 0 {
		time.Sleep(r.delay)
	}
	r.mu.Lock()
	r.stats.Protos[req.Proto]++
	if late {
		r.stats.OKAfter5s++
	}
	for i, key := range keys {
		if _, dup := r.seen[key]; dup {
			r.stats.Duplicates++
			continue
		}
		r.seen[key] = struct{}{}
		r.stats.Received++
		r.stats.ByType[events[i].Type]++
		if r.latencyType == "" || events[i].Type == r.latencyType {
			r.lat = append(r.lat, now.Sub(events[i].Timestamp))
		}
	}
	r.wakeLocked()
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// wakeLocked releases the waiters whose count is reached.
func (r *receiver) wakeLocked() {
	kept := r.waiters[:0]
	for _, wt := range r.waiters {
		if r.countLocked(wt.typ) >= wt.n {
			close(wt.ch)
		} else {
			kept = append(kept, wt)
		}
	}
	r.waiters = kept
}

// countLocked is how many distinct deliveries arrived, of type typ when it
// is set.
func (r *receiver) countLocked(typ string) int {
	if typ == "" {
		return r.stats.Received
	}
	return r.stats.ByType[typ]
}

// wait answers once n distinct deliveries arrived (of the event type
// "type" when given) (200) or after timeout (408), with the stats.
func (r *receiver) wait(w http.ResponseWriter, req *http.Request) {
	n, _ := strconv.Atoi(req.URL.Query().Get("n"))
	typ := req.URL.Query().Get("type")
	timeout, err := time.ParseDuration(req.URL.Query().Get("timeout"))
	if err != nil {
		timeout = 10 * time.Minute
	}
	ch := make(chan struct{})
	r.mu.Lock()
	if r.countLocked(typ) >= n {
		close(ch)
	} else {
		r.waiters = append(r.waiters, waiter{n: n, typ: typ, ch: ch})
	}
	r.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
		w.WriteHeader(http.StatusRequestTimeout)
	case <-req.Context().Done():
		return
	}
	_ = json.NewEncoder(w).Encode(r.snapshot())
}

func (r *receiver) snapshot() receiverStats {
	r.mu.Lock()
	s := r.stats
	s.ByType = maps.Clone(r.stats.ByType)
	s.Protos = maps.Clone(r.stats.Protos)
	lat := slices.Clone(r.lat)
	r.mu.Unlock()
	if len(lat) > 0 {
		slices.Sort(lat)
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		s.P50ms, s.P99ms, s.MaxMs = ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100]), ms(lat[len(lat)-1])
	}
	return s
}

// hookNames lists names for n API webhooks.
func hookNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = "api" + strings.Repeat("0", 3-len(strconv.Itoa(i))) + strconv.Itoa(i)
	}
	return names
}
