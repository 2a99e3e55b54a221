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
		plan += fmt.Sprintf(", and state schema %q with everything in it (pending and failed deliveries, the attempts log, API-registered webhooks)", cfg.State.Schema)
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
	check, err := cdc.CheckSlot(ctx, src.URL, src.Slot, src.Publication, nil)
	if err != nil {
		return err
	}
	err = cdc.Teardown(ctx, src.URL, src.Slot, src.Publication)
	switch {
	case errors.Is(err, cdc.ErrSlotElsewhere):
		fmt.Fprintf(a.stdout, "left replication slot %s: it belongs to database %s, not %s, so it is not this config's\n", src.Slot, check.Slot.Database, check.Database)
	case err != nil:
		return err
	default:
		fmt.Fprintln(a.stdout, dropped("replication slot", src.Slot, check.Slot.Exists))
	}
	fmt.Fprintln(a.stdout, dropped("publication", src.Publication, check.Publication.Exists))
	if state {
		if err := dropState(ctx, cfg); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "dropped state schema %s\n", cfg.State.Schema)
		return nil
	}
	return forgetSlot(ctx, cfg, check.Database)
}

// forgetSlot removes walhook's record of the slot of database (kept in the
// state schema), if there is one.
func forgetSlot(ctx context.Context, cfg *config.Config, database string) error {
	st, pool, err := openState(ctx, cfg)
	if errors.Is(err, store.ErrNoSchema) {
		return nil
	}
	if err != nil {
		return err
	}
	defer pool.Close()
	_, err = st.DeleteSlotRecord(ctx, cfg.Source.Slot, database)
	return err
}

func dropped(what, name string, existed bool) string {
	if existed {
		return "dropped " + what + " " + name
	}
	return what + " " + name + " did not exist"
}

// dropState drops the state schema.
func dropState(ctx context.Context, cfg *config.Config) error {
	pool, err := pgxpool.New(ctx, cfg.StateURL())
	if err != nil {
		return fmt.Errorf("connecting to the state database: %w", err)
	}
	defer pool.Close()
	return store.Drop(ctx, pool, cfg.State.Schema)
}
