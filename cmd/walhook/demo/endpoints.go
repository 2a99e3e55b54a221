package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/receiver"
	"github.com/walhook/walhook/internal/termstyle"
)

// failingEvent is the event type whose first delivery the demo's failing
// endpoint answers with 500 twice before accepting it.
const failingEvent = "deal.stage.changed"

// failTimes is how often the failing endpoint refuses that delivery.
const failTimes = 2

// receivers are the demo's local endpoints: one verifying receiver per
// config endpoint, served on one loopback listener under /<name>.
type receivers struct {
	srv     *http.Server
	ln      net.Listener
	byName  map[string]*receiver.Receiver
	order   []string
	failing string // the endpoint that fails failTimes, "" if none fits
}

// newReceivers starts a receiver for every endpoint of cfg and points the
// endpoint at it.
func newReceivers(cfg *config.Config) (*receivers, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening for the demo receivers: %w", err)
	}
	rs := &receivers{ln: ln, byName: map[string]*receiver.Receiver{}}
	mux := http.NewServeMux()
	for _, ep := range cfg.Endpoints {
		if rs.failing == "" && ep.Matches(failingEvent) {
			rs.failing = ep.Name
		}
		opts := receiver.Options{Scheme: ep.Signing, Secrets: ep.Secrets, SignatureHeader: ep.SignatureHeader}
		if ep.Name == rs.failing {
			opts.Fail = failFirst(failingEvent, failTimes)
		}
		r := receiver.New(opts)
		rs.byName[ep.Name] = r
		rs.order = append(rs.order, ep.Name)
		mux.Handle("/"+ep.Name, r)
		ep.URL = "http://" + ln.Addr().String() + "/" + ep.Name
	}
	rs.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = rs.srv.Serve(ln) }()
	return rs, nil
}

// failFirst answers 500 to the first n attempts of the first event of
// type typ, then lets the receiver answer normally.
func failFirst(typ string, n int) func(*receiver.Received) int {
	var mu sync.Mutex
	var id string
	failed := 0
	return func(rec *receiver.Received) int {
		mu.Lock()
		defer mu.Unlock()
		if rec.Type != typ || !rec.Verified {
			return 0
		}
		if id == "" {
			id = rec.ID
		}
		if rec.ID == id && failed < n {
			failed++
			return http.StatusInternalServerError
		}
		return 0
	}
}

// close stops the listener, letting requests in progress finish.
func (rs *receivers) close(ctx context.Context) {
	_ = rs.srv.Shutdown(ctx)
}

// arrival is one request a receiver answered, with its endpoint.
type arrival struct {
	endpoint string
	rec      receiver.Received
}

// watch prints every request the receivers answer and counts it in t,
// until ctx ends; the returned channel closes when it has stopped.
func (rs *receivers) watch(ctx context.Context, p *printer, t *tally) <-chan struct{} {
	all := make(chan arrival)
	var wg sync.WaitGroup
	for _, name := range rs.order {
		ch := rs.byName[name].Subscribe(ctx)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for rec := range ch {
				select {
				case all <- arrival{endpoint: name, rec: rec}:
				case <-ctx.Done():
				}
			}
		}()
	}
	go func() { wg.Wait(); close(all) }()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for a := range all {
			ok := a.rec.Verified && a.rec.Status < 300
			p.delivery(a, a.endpoint == rs.failing && !ok && a.rec.Verified)
			t.update(func(t *tally) {
				if ok {
					t.accepted++
				} else {
					t.rejected++
				}
			})
		}
	}()
	return done
}

// printer writes the demo's story output.
type printer struct {
	mu    sync.Mutex
	out   io.Writer
	color bool
	shown map[string]bool // endpoints whose first request was shown in full
}

func (p *printer) style(code, s string) string { return termstyle.Apply(p.color, code, s) }

// printf writes a line of narration.
func (p *printer) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.out, format, args...)
}

// step announces a step of the story and its SQL.
func (p *printer) step(title, sql string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.out, "\n%s %s\n", p.style(termstyle.Bold+termstyle.Yellow, "▸"), p.style(termstyle.Bold, title))
	for _, line := range strings.Split(strings.TrimSpace(sql), "\n") {
		fmt.Fprintf(p.out, "    %s\n", p.style(termstyle.Dim, strings.TrimSpace(line)))
	}
}

// delivery prints one answered request: a summary line and the payload;
// the first request of each endpoint is shown in full, headers included.
func (p *printer) delivery(a arrival, injected bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	rec := a.rec
	var b strings.Builder
	fmt.Fprintf(&b, "  %s  %-19s → %-8s attempt %d  ", p.style(termstyle.Dim, rec.At.Format("15:04:05.000")),
		p.style(termstyle.Cyan, rec.Type), a.endpoint, max(rec.Attempt, 1))
	switch {
	case rec.Verified:
		b.WriteString(p.style(termstyle.Green, "signature verified ✓"))
	case rec.VerifyErr != nil:
		b.WriteString(p.style(termstyle.Red, "signature ✗ "+rec.VerifyErr.Error()))
	default:
		b.WriteString("signature not checked")
	}
	status := fmt.Sprintf("  → %d", rec.Status)
	if rec.Status >= 300 {
		status = p.style(termstyle.Red, status)
		if injected {
			status += p.style(termstyle.Dim, " (the demo makes this endpoint fail; walhook retries)")
		}
	}
	b.WriteString(status)
	b.WriteString("\n")
	if !p.shown[a.endpoint] && rec.Status < 300 {
		p.shown[a.endpoint] = true
		b.WriteString(p.style(termstyle.Dim, fmt.Sprintf("      the first request %s received, in full:\n", a.endpoint)))
		b.WriteString(p.style(termstyle.Dim, indent(fullRequest("/"+a.endpoint, rec), "      ")))
	} else {
		b.WriteString("      " + p.style(termstyle.Dim, compact(rec.Body)) + "\n")
	}
	fmt.Fprint(p.out, b.String())
}

// fullRequest renders rec as an HTTP request: the headers walhook set and
// the body, indented.
func fullRequest(path string, rec receiver.Received) string {
	var b strings.Builder
	b.WriteString("POST " + path + "\n")
	names := make([]string, 0, len(rec.Header))
	for k := range rec.Header {
		if k == "Accept-Encoding" || k == "Content-Length" {
			continue
		}
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		for _, v := range rec.Header[k] {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	b.WriteString("\n")
	var pretty bytes.Buffer
	if json.Indent(&pretty, rec.Body, "", "  ") == nil {
		b.Write(pretty.Bytes())
	} else {
		b.Write(rec.Body)
	}
	b.WriteString("\n")
	return b.String()
}

// compactLimit caps a compact payload, in runes.
const compactLimit = 150

// compact shows a body's data (or the whole body) as one line of JSON.
func compact(body []byte) string {
	var fields map[string]json.RawMessage
	show := body
	if json.Unmarshal(body, &fields) == nil && fields["data"] != nil {
		show = fields["data"]
	}
	var buf bytes.Buffer
	s := string(show)
	if json.Compact(&buf, show) == nil {
		s = buf.String()
	}
	if utf8.RuneCountInString(s) <= compactLimit {
		return s
	}
	return string([]rune(s)[:compactLimit]) + "…"
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n") + "\n"
}
