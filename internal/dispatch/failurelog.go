package dispatch

import (
	"sort"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/walhook/walhook/internal/event"
)

// Failed evaluations are logged at most failureLogFirst times per rule per
// failureLogPeriod; the others are counted and summed up once per period,
// so a rule failing on a million rows writes a few lines, not a million.
// Every failure is still stored and counted in the metric.
const (
	failureLogFirst  = 5
	failureLogPeriod = time.Minute
)

// failureLog rate-limits the warn lines of failed evaluations per rule.
type failureLog struct {
	log   zerolog.Logger
	first int

	mu         sync.Mutex // a leaf: held to count, never while logging
	logged     map[string]int
	suppressed map[string]int
}

func newFailureLog(log zerolog.Logger, first int) *failureLog {
	return &failureLog{log: log, first: first, logged: map[string]int{}, suppressed: map[string]int{}}
}

// record logs the failures the period's allowance of their rule still
// covers and counts the others.
func (l *failureLog) record(fs []event.Failure) {
	var show []*event.Failure
	l.mu.Lock()
	for i := range fs {
		f := &fs[i]
		if l.logged[f.Rule] < l.first {
			l.logged[f.Rule]++
			show = append(show, f)
		} else {
			l.suppressed[f.Rule]++
		}
	}
	l.mu.Unlock()
	for _, f := range show {
		l.log.Warn().Str("rule", f.Rule).Str("table", f.Table).Str("op", string(f.Op)).
			Uint32("xid", f.XID).Stringer("lsn", f.CommitLSN).Int("position", f.Position).Str("error", f.Error).
			Msg("rule failed on a change; recorded as a failed evaluation (walhook evaluations list)")
		l.log.Debug().Str("rule", f.Rule).Stringer("lsn", f.CommitLSN).Int("position", f.Position).
			RawJSON("row", rawOrNull(f.Row)).Msg("row of the failed evaluation")
	}
}

// flush logs, per rule, how many failures were not logged one by one
// since the last flush, and starts a new period.
func (l *failureLog) flush() {
	l.mu.Lock()
	suppressed := l.suppressed
	l.logged, l.suppressed = map[string]int{}, map[string]int{}
	l.mu.Unlock()
	rules := make([]string, 0, len(suppressed))
	for r := range suppressed {
		rules = append(rules, r)
	}
	sort.Strings(rules)
	for _, r := range rules {
		l.log.Warn().Str("rule", r).Int("count", suppressed[r]).
			Msgf("rule failed on %d more changes, not logged one by one; all are recorded as failed evaluations (walhook evaluations list)", suppressed[r])
	}
}

func rawOrNull(b []byte) []byte {
	if len(b) == 0 {
		return []byte("null")
	}
	return b
}
