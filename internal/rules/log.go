package rules

import (
	"github.com/rs/zerolog"
	"github.com/walhook/walhook/internal/event"
)

// LogFailure logs a failed evaluation at warn level with its rule, table,
// op, transaction, LSN, position and error; the row (which may hold personal
// data) only at debug level.
func LogFailure(log zerolog.Logger, f *event.Failure) {
	log.Warn().
		Str("rule", f.Rule).Str("table", f.Table).Str("op", string(f.Op)).
		Uint32("xid", f.XID).Str("lsn", f.CommitLSN.String()).Int("position", f.Position).
		Str("error", f.Error).
		Msg("rule failed on a change")
	log.Debug().Str("rule", f.Rule).Str("lsn", f.CommitLSN.String()).Int("position", f.Position).
		RawJSON("row", f.Row).Msg("row of the failed rule")
}
