package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/walhook/walhook/relay"
)

func init() { register(newRunCommand) }

func newRunCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "run",
		Short: "Capture changes and deliver webhooks (the daemon)",
		Long: `Runs walhook: reads the source's replication slot (or outbox table), evaluates
the rules of the config file and delivers every event to its endpoints until
accepted. SIGTERM or Ctrl-C stops it cleanly: requests in flight finish or are
stored for retry, and the settled position is confirmed to Postgres.`,
		Example: `  walhook run -c walhook.hcl
  walhook run --config /etc/walhook.hcl --log-format console --log-level debug`,
		Args:        noArgs,
		Annotations: readsConfig(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := a.logger()
			if err != nil {
				return err
			}
			cfg, err := a.config()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			defer startPprof(ctx, log)()
			r, err := relay.New(ctx, cfg, log, relay.Options{})
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				log.Error().Err(err).Msg("starting walhook")
				return exitStatus(1)
			}
			if err := r.Run(ctx); err != nil {
				log.Error().Err(err).Msg("walhook stopped with an error")
				return exitStatus(1)
			}
			log.Info().Msg("walhook stopped")
			return nil
		},
	}
}
