package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/store"
)

func init() { register(newTeardownCommand) }

func newTeardownCommand(a *app) *cobra.Command {
	var state, yes bool
	cmd := &cobra.Command{
		Use:   "teardown",
		Short: "Drop the replication slot and publication (and with --state the state schema)",
		Long: `Drops what walhook created, so that an uninstalled walhook pins no WAL: the
replication slot and the publication, and with --state the state schema (retry
queue, attempts log, API-registered webhooks). It asks for confirmation on a
terminal; elsewhere it needs --yes. It refuses to drop a slot a running
walhook holds.`,
		Example: `  walhook teardown -c walhook.hcl
  walhook teardown -c walhook.hcl --state --yes`,
		Args:        noArgs,
		Annotations: readsConfig(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.teardown(cmd.Context(), state, yes)
		},
	}
	cmd.Flags().BoolVar(&state, "state", false, "also drop the state schema: retry queue, attempts log, API-registered webhooks")
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")
	return cmd
}

// teardown drops the slot, the publication and with state the state schema.
func (a *app) teardown(ctx context.Context, state, yes bool) error {
	cfg, err := a.config()
	if err != nil {
		return err
	}
	src := cfg.Source
	plan := fmt.Sprintf("replication slot %q and publication %q", src.Slot, src.Publication)
	if state {
		plan += fmt.Sprintf(", and state schema %q with everything in it (pending and failed deliveries, the attempts log, API-registered webhooks)", stateSchema(cfg))
	}
	if !yes {
		if !a.stdinTerminal {
			return fmt.Errorf("teardown would drop %s; stdin is not a terminal, so pass --yes to confirm", plan)
		}
		fmt.Fprintf(a.stdout, "This drops %s.\nType \"yes\" to continue: ", plan)
		line, _ := bufio.NewReader(a.stdin).ReadString('\n')
		if strings.TrimSpace(line) != "yes" {
			return errors.New("teardown cancelled; nothing was dropped")
		}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	slot, pub, err := cdc.Inspect(ctx, src.URL, src.Slot, src.Publication)
	if err != nil {
		return err
	}
	if err := cdc.Teardown(ctx, src.URL, src.Slot, src.Publication); err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, dropped("replication slot", src.Slot, slot.Exists))
	fmt.Fprintln(a.stdout, dropped("publication", src.Publication, pub.Exists))
	if state {
		if err := dropState(ctx, cfg); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "dropped state schema %s\n", stateSchema(cfg))
	}
	return nil
}

func dropped(what, name string, existed bool) string {
	if existed {
		return "dropped " + what + " " + name
	}
	return what + " " + name + " did not exist"
}

// dropState drops the state schema.
func dropState(ctx context.Context, cfg *config.Config) error {
	pool, err := pgxpool.New(ctx, stateURL(cfg))
	if err != nil {
		return fmt.Errorf("connecting to the state database: %w", err)
	}
	defer pool.Close()
	return store.Drop(ctx, pool, stateSchema(cfg))
}
