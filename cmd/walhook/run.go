package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/relay"
)

func init() {
	register(command{name: "run", summary: "capture changes and deliver webhooks (the daemon)", run: runRun})
}

func runRun(args []string) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	cfgPath := fs.String("c", "walhook.hcl", "config file")
	logs := logFlags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, ok := loadConfig(*cfgPath)
	if !ok {
		return 1
	}
	log := logs.logger()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	defer startPprof(ctx, log)()

	r, err := relay.New(ctx, cfg, log, relay.Options{})
	if err != nil {
		if ctx.Err() != nil {
			return 0
		}
		log.Error().Err(err).Msg("starting walhook")
		return 1
	}
	if err := r.Run(ctx); err != nil {
		log.Error().Err(err).Msg("walhook stopped with an error")
		return 1
	}
	log.Info().Msg("walhook stopped")
	return 0
}

// loadConfig loads and validates a config file, printing its diagnostics.
func loadConfig(path string) (*config.Config, bool) {
	cfg, diags := config.Load(path)
	if len(diags) > 0 {
		src, _ := os.ReadFile(path)
		_ = config.WriteDiagnostics(os.Stderr, map[string][]byte{path: src}, diags)
	}
	if diags.HasErrors() {
		fmt.Fprintf(os.Stderr, "walhook: %s is not valid; nothing was started\n", path)
		return nil, false
	}
	return cfg, true
}
