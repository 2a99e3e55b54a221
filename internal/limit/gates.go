package limit

import "sync"

// Gates keeps one Gate per endpoint id across rebuilds of the endpoint
// table, so that a webhook changed through the API (or a config reload)
// keeps the limit it learned unless its ceiling or rate changed. It is
// safe for concurrent use.
type Gates struct {
	clock   Clock
	onLimit func(endpointID string, limit int)

	mu    sync.Mutex
	gates map[string]*gateEntry
}

type gateEntry struct {
	ceiling int
	rate    Rate
	gate    *Gate
}

// NewGates returns an empty set; onLimit (may be nil) is told every new
// limit of every endpoint, as metrics.Metrics.SetConcurrencyLimit wants.
func NewGates(clock Clock, onLimit func(endpointID string, limit int)) *Gates {
	return &Gates{clock: clock, onLimit: onLimit, gates: map[string]*gateEntry{}}
}

// For returns the Gate of endpoint id with ceiling (0: DefaultCeiling)
// and rate (zero: none): the one it had if those are unchanged, else a new
// one.
func (g *Gates) For(id string, ceiling int, rate Rate) *Gate {
	if ceiling <= 0 {
		ceiling = DefaultCeiling
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if e, ok := g.gates[id]; ok && e.ceiling == ceiling && e.rate == rate {
		return e.gate
	}
	opts := GateOptions{Ceiling: ceiling, Rate: rate, Clock: g.clock}
	if g.onLimit != nil {
		on := g.onLimit
		opts.OnLimit = func(l int) { on(id, l) }
	}
	gate := NewGate(opts)
	g.gates[id] = &gateEntry{ceiling: ceiling, rate: rate, gate: gate}
	if g.onLimit != nil {
		g.onLimit(id, gate.Limit())
	}
	return gate
}

// Retain forgets the gates of endpoints not in ids and returns their ids
// (for metrics.Metrics.ForgetEndpoint).
func (g *Gates) Retain(ids map[string]bool) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var gone []string
	for id := range g.gates {
		if !ids[id] {
			delete(g.gates, id)
			gone = append(gone, id)
		}
	}
	return gone
}

// Snapshot returns each endpoint's current limit, for status output.
func (g *Gates) Snapshot() map[string]int {
	g.mu.Lock()
	gates := make(map[string]*Gate, len(g.gates))
	for id, e := range g.gates {
		gates[id] = e.gate
	}
	g.mu.Unlock()
	out := make(map[string]int, len(gates))
	for id, gate := range gates {
		out[id] = gate.Limit()
	}
	return out
}
