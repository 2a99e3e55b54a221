package limit

import "time"

// Several walhook instances may send to one endpoint (docs/scaling.md,
// "Limits across the cluster"). What one instance's gate learns of the
// endpoint, the others should not each have to learn again by hammering
// it: a gate tells its owner a Signal when an attempt paused the endpoint,
// cut its concurrency limit or taught it a rate; the owner publishes it,
// and the other instances' gates Follow what was published: they wait out
// the same pause, lower their limit to their share of the publisher's,
// and pace at their share of its learned rate. Each gate then adapts on
// its own from there, as after a cut of its own.

// PeerLimitFor is how long a published limit may be followed: one older
// than this says nothing of the endpoint now.
const PeerLimitFor = 30 * time.Second

// Signal is what an attempt taught a gate that its peers should follow.
type Signal struct {
	// Pause is a Retry-After pause from now (at most MaxPause); 0: none.
	Pause time.Duration
	// Cut reports an Overload outcome that cut the concurrency limit, and
	// Learned a 429 that taught a rate.
	Cut, Learned bool
	// Limit and Rate are the gate's concurrency limit and learned rate
	// (requests/s, 0: none) after the attempt.
	Limit int
	Rate  float64
}

// any reports whether s carries anything to tell.
func (s Signal) any() bool { return s.Pause > 0 || s.Cut || s.Learned }

// Peer is what another instance published of the endpoint, already
// divided to this instance's share.
type Peer struct {
	// PausedUntil is when its Retry-After pause ends; zero: none.
	PausedUntil time.Time
	// Limit and Rate are this instance's share of its concurrency limit
	// and learned rate (requests/s), published at Since; 0: none.
	Limit int
	Rate  float64
	Since time.Time
}

// Follow applies what a peer published: the gate waits out its pause (at
// most MaxPause; a longer one in force stands), its concurrency limit
// comes down to p.Limit if it is higher, and it paces at p.Rate (grown
// since, as a rate learned here grows) if that is lower than what it paces
// at. A limit and rate older than PeerLimitFor are not followed. Nothing
// is signalled back: a peer's limits are not published again.
func (g *Gate) Follow(p Peer) {
	now := g.clock.Now()
	if left := p.PausedUntil.Sub(now); left > 0 {
		g.pause(left)
	}
	if p.Limit <= 0 && p.Rate <= 0 {
		return
	}
	if age := now.Sub(p.Since); age < 0 || age >= PeerLimitFor {
		return
	}
	if p.Limit > 0 {
		g.conc.CutTo(p.Limit)
	}
	if p.Rate > 0 {
		g.mu.Lock()
		g.learned.follow(now, p.Rate, p.Since)
		g.mu.Unlock()
	}
}
