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
	var opts teardownOptions
	cmd := &cobra.Command{
		Use:   "teardown",
		Short: "Drop the replication slot and publication (with --triggers walhook's triggers, with --state the state schema)",
		Long: `Drops what walhook created, so that an uninstalled walhook pins no WAL: the
replication slot and the publication, with --triggers the capture triggers
and the outbox table's notify trigger (and their functions, when nothing
else runs them), and with --state the state schema (retry queue, attempts
log, API-registered webhooks).

It looks up what it leaves and says so, with the way to remove each: capture
triggers (walhook_capture, walhook_capture_truncate) still writing every
change of the rules' tables into the outbox table, the outbox table's
walhook_notify trigger, and the outbox table itself with its row count. The
outbox table holds the application's events, so teardown never drops it:
remove the capture triggers first, then DROP TABLE it yourself.

It asks for confirmation on a terminal; elsewhere it needs --yes. It refuses
to drop a slot a running walhook holds, and never drops a slot of another
database. In mode "outbox" (polling) the config has no slot or publication,
so it drops none.`,
		Example: `  walhook teardown -c walhook.hcl
  walhook teardown -c walhook.hcl --triggers --yes
  walhook teardown -c walhook.hcl --state --yes`,
		Args:        noArgs,
		Annotations: readsConfig(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.teardown(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.triggers, "triggers", false, "also remove the capture triggers and the outbox table's notify trigger (never the outbox table)")
	cmd.Flags().BoolVar(&opts.state, "state", false, "also drop the state schema: retry queue, attempts log, API-registered webhooks")
	cmd.Flags().BoolVar(&opts.yes, "yes", false, "do not ask for confirmation")
	return cmd
}

// teardownOptions are teardown's flags.
type teardownOptions struct {
	triggers, state, yes bool
}

// teardown drops the slot and the publication (none in polling mode), with
// triggers walhook's triggers, and with state the state schema; it says
// what it leaves.
func (a *app) teardown(ctx context.Context, opts teardownOptions) error {
	cfg, err := a.config()
	if err != nil {
		return err
	}
	lookup, cancel := context.WithTimeout(ctx, time.Minute)
	in, err := findInstalled(lookup, cfg)
	cancel()
	if err != nil {
		return err
	}
	src := cfg.Source
	polling := src.Mode == config.ModeOutbox
	var drops []string
	if polling {
		fmt.Fprintf(a.stdout, "no replication slot or publication to drop: source mode %q polls %s without one\n", src.Mode, src.Outbox.Table)
	} else {
		drops = append(drops, fmt.Sprintf("replication slot %q and publication %q", src.Slot, src.Publication))
	}
	if opts.triggers {
		drops = append(drops, triggerDrops(in)...)
	}
	if opts.state {
		drops = append(drops, fmt.Sprintf("state schema %q with everything in it (pending and failed deliveries, the attempts log, API-registered webhooks)", cfg.State.Schema))
	}
	left := a.leftBehind(in, opts.triggers)
	if len(drops) == 0 {
		fmt.Fprintln(a.stdout, nothingToDrop(opts))
		a.printLeft(left)
		return nil
	}
	plan := listJoin(drops)
	if !opts.yes {
		if !a.stdinTerminal {
			return fmt.Errorf("teardown would drop %s; stdin is not a terminal, so pass --yes to confirm", plan)
		}
		fmt.Fprintf(a.stdout, "This drops %s.\n", plan)
		if len(left) > 0 {
			fmt.Fprintf(a.stdout, "It leaves %s.\n", listJoin(leftNames(left)))
		}
		fmt.Fprint(a.stdout, "Type \"yes\" to continue: ")
		line, _ := bufio.NewReader(a.stdin).ReadString('\n')
		if strings.TrimSpace(line) != "yes" {
			return errors.New("teardown cancelled; nothing was dropped")
		}
	}
	ctx, cancel = context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if !polling {
		if err := a.dropSlot(ctx, cfg, opts.state); err != nil {
			return err
		}
	}
	if opts.triggers {
		if err := removeTriggers(ctx, cfg, in, true); err != nil {
			return err
		}
		a.printRemoved(in)
	}
	a.printLeft(left)
	if opts.state {
		if err := dropState(ctx, cfg); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "dropped state schema %s\n", cfg.State.Schema)
	}
	return nil
}

// nothingToDrop says that teardown has nothing to drop, and what the flags
// not given would drop.
func nothingToDrop(opts teardownOptions) string {
	var more []string
	if !opts.triggers {
		more = append(more, "--triggers removes walhook's triggers")
	}
	if !opts.state {
		more = append(more, "--state drops the state schema")
	}
	if len(more) == 0 {
		return "nothing to drop"
	}
	return "nothing to drop (" + strings.Join(more, ", ") + ")"
}

// dropSlot drops the slot and the publication of cfg's database, leaving a
// slot of that name that belongs to another database, and (unless the
// state schema goes too) walhook's record of the slot.
func (a *app) dropSlot(ctx context.Context, cfg *config.Config, state bool) error {
	src := cfg.Source
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
