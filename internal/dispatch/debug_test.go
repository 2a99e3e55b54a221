package dispatch

import (
	"fmt"
	"strings"
)

// debugState describes the dispatcher's runners, for a failing test.
func (d *Dispatcher) debugState() string {
	d.mu.Lock()
	runners := make(map[string]*runner, len(d.runners))
	for id, r := range d.runners {
		runners[id] = r
	}
	d.mu.Unlock()
	var b strings.Builder
	for id, r := range runners { // the gate's and runner's locks are not taken under d.mu
		r.mu.Lock()
		workers := append([]int(nil), r.workers...)
		r.mu.Unlock()
		fmt.Fprintf(&b, "%s: retrying %d, gate %d/%d (ceiling %d, paused until %s), workers %v", id, r.retrying.Load(),
			r.gate.InFlight(), r.gate.Limit(), r.gate.Ceiling(), r.gate.PausedUntil().Format("15:04:05.000"), workers)
		for _, q := range r.queues {
			fmt.Fprintf(&b, " q=%d", len(q))
		}
		if r.keys != nil {
			r.keys.mu.Lock()
			mem, storing, stored := 0, 0, 0
			for _, s := range r.keys.keys {
				mem += s.inMemory
				storing += s.storing
				if s.stored != 0 {
					stored++
				}
			}
			fmt.Fprintf(&b, " ledger: %d keys, inMemory %d, storing %d, stored keys %d", len(r.keys.keys), mem, storing, stored)
			r.keys.mu.Unlock()
		}
		b.WriteString("\n")
	}
	return b.String()
}
