package dispatch

import (
	"fmt"
	"strings"
)

// debugState describes the dispatcher's runners, for a failing test.
func (d *Dispatcher) debugState() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var b strings.Builder
	for id, r := range d.runners {
		r.gate.mu.Lock()
		fmt.Fprintf(&b, "%s: retrying %d/%d, gate %d/%d waiting %d, workers %d", id, r.retrying.Load(), r.retryCap, r.gate.used, r.gate.limit, r.gate.waiting, r.workers)
		r.gate.mu.Unlock()
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
