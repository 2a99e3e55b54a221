package outboxevents

import (
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/walhook/walhook/internal/event"
)

// skipLogPeriod is the least time between two log lines about skipped rows.
const skipLogPeriod = time.Minute

// SkipNoSubscriber is the reason of a row whose event no endpoint wants.
const SkipNoSubscriber = "no_subscriber"

// skipLog counts skipped rows and logs them, at most once per
// skipLogPeriod: the first skip at once, later ones summed up.
type skipLog struct {
	table string
	count func(reason string)
	log   zerolog.Logger

	mu      sync.Mutex // a leaf: never held while logging
	last    time.Time
	pending int
}

func newSkipLog(table string, count func(string), log zerolog.Logger) *skipLog {
	return &skipLog{table: table, count: count, log: log}
}

func (l *skipLog) skip(ev *event.Event) {
	if l.count != nil {
		l.count(SkipNoSubscriber)
	}
	now := time.Now()
	l.mu.Lock()
	l.pending++
	if !l.last.IsZero() && now.Sub(l.last) < skipLogPeriod {
		l.mu.Unlock()
		return
	}
	n := l.pending
	l.pending, l.last = 0, now
	l.mu.Unlock()
	l.log.Warn().Str("outbox", l.table).Int("rows", n).Str("last_type", ev.Type).Str("last_id", ev.ID).
		Msgf("outbox rows consumed without a delivery: no endpoint subscribes to their event type (%d since the last such line, which comes at most once a minute; walhook_outbox_rows_skipped_total counts them all)", n)
}

// Unrouted is the dispatch.Batch callback for an event no endpoint wants:
// an outbox row's event is a skipped row; a rule's event is not (it came
// from another table, or from a captured change).
func (s *Source) Unrouted(ev *event.Event) {
	if ev.Op != "" || ev.Table != s.table {
		return
	}
	s.skips.skip(ev)
}
