package relay

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/walhook/walhook/cdc/outbox"
	"github.com/walhook/walhook/internal/config"
)

// checkOutbox checks the outbox table before anything starts, as
// `walhook validate --db` does (outbox.CheckTable): a table walhook cannot
// read is an error giving every fix, instead of a claim failing forever.
// Its warnings, and those of its triggers (outbox.CheckTriggers), are
// logged. While the source database cannot be read it retries with
// backoff until ctx ends.
func checkOutbox(ctx context.Context, cfg *config.Config, log zerolog.Logger) error {
	o := cfg.Source.Outbox
	for wait := 250 * time.Millisecond; ; wait = min(2*wait, 10*time.Second) {
		problems, err := readOutboxProblems(ctx, cfg)
		if err == nil {
			for i := range problems {
				problems[i] = problems[i].ForConfig(cfg.Filename)
			}
			if err := outbox.Errors(o.Table, problems); err != nil {
				return err
			}
			for _, p := range problems {
				log.Warn().Str("table", p.Table).Str("column", p.Column).Str("fix", p.Fix).Msg(p.Detail)
			}
			return nil
		}
		log.Warn().Err(err).Stringer("retry_in", wait).Msg("checking the outbox table")
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// readOutboxProblems reads the outbox table's problems, then its triggers'
// (whose every problem is only logged: triggers may be installed while
// walhook runs).
func readOutboxProblems(ctx context.Context, cfg *config.Config) ([]outbox.Problem, error) {
	o := cfg.Source.Outbox
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, cfg.Source.URL)
	if err != nil {
		return nil, fmt.Errorf("connecting to the source database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	problems, err := outbox.CheckTable(ctx, conn, o.Table)
	if err != nil {
		return nil, err
	}
	triggers, err := outbox.CheckTriggers(ctx, conn, outbox.TriggerCheck{
		Outbox: o.Table, Polling: cfg.Source.Mode == config.ModeOutbox, Captured: cfg.EventTables()})
	if err != nil {
		return nil, err
	}
	for _, p := range triggers {
		p.Warning = true
		problems = append(problems, p)
	}
	return problems, nil
}
