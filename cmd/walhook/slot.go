package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/walhook/walhook/relay"
)

func init() { register(newSlotCommand) }

func newSlotCommand(a *app) *cobra.Command {
	return newGroup("slot", "Re-create the replication slot on purpose after it was lost",
		`  walhook slot recreate -c walhook.hcl --backfill`,
		newSlotRecreateCommand(a))
}

func newSlotRecreateCommand(a *app) *cobra.Command {
	var withBackfill, yes bool
	cmd := &cobra.Command{
		Use:   "recreate",
		Short: "Re-create the publication and slot from now (the way out when walhook stopped on lost changes)",
		Long: `Re-creates the publication (if missing) and the replication slot from the
current position, and records the new slot as walhook's. It is the way out
when walhook stopped because its slot was dropped, re-created or moved by
someone else, invalidated by Postgres, or its publication was dropped: the
changes committed after the last position walhook confirmed, until now, are
not delivered by the stream. With --backfill it queues a backfill of every
table whose event blocks have "read" in on, under new event ids, which the
next walhook run sends as read events so consumers can resync.

It drops the old slot if there is one (only in source.url's database) and
refuses while a reader streams from it. It asks for confirmation on a
terminal; elsewhere it needs --yes. See docs/operations.md, "When the slot or
publication is lost".`,
		Example: `  walhook slot recreate -c walhook.hcl
  walhook slot recreate -c walhook.hcl --backfill --yes`,
		Args:        noArgs,
		Annotations: readsConfig(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.recreateSlot(cmd.Context(), withBackfill, yes)
		},
	}
	cmd.Flags().BoolVar(&withBackfill, "backfill", false, `queue a backfill (read events) of every table whose events list "read"`)
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")
	return cmd
}

func (a *app) recreateSlot(ctx context.Context, withBackfill, yes bool) error {
	cfg, err := a.config()
	if err != nil {
		return err
	}
	src := cfg.Source
	if !yes {
		plan := fmt.Sprintf("This re-creates replication slot %q (dropping it if it exists) and publication %q from the current position: changes committed since walhook last confirmed a position are not delivered by the stream", src.Slot, src.Publication)
		if withBackfill {
			plan += "; the rules' tables are backfilled as read events"
		}
		if !a.stdinTerminal {
			return fmt.Errorf("%s. stdin is not a terminal, so pass --yes to confirm", plan)
		}
		fmt.Fprintf(a.stdout, "%s.\nType \"yes\" to continue: ", plan)
		line, _ := bufio.NewReader(a.stdin).ReadString('\n')
		if strings.TrimSpace(line) != "yes" {
			return errors.New("slot recreate cancelled; nothing was changed")
		}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	res, err := relay.RecreateSlot(ctx, cfg, withBackfill)
	if err != nil {
		return err
	}
	switch {
	case res.Before.Exists:
		fmt.Fprintf(a.stdout, "dropped replication slot %s (confirmed %s)\n", src.Slot, orNone(res.Before.ConfirmedLSN))
	default:
		fmt.Fprintf(a.stdout, "replication slot %s did not exist\n", src.Slot)
	}
	fmt.Fprintf(a.stdout, "created replication slot %s in database %s at %s, and recorded it as walhook's\n", src.Slot, res.Record.Database, res.Record.Confirmed)
	if res.Previous != nil {
		fmt.Fprintf(a.stdout, "lost: changes committed after %s (the last position walhook confirmed) and before %s are not delivered by the stream\n", res.Previous.Confirmed, res.Record.Confirmed)
	} else {
		fmt.Fprintf(a.stdout, "lost: walhook had no record of the slot; changes committed before %s that it had not delivered are not delivered by the stream\n", res.Record.Confirmed)
	}
	for _, b := range res.Backfills {
		fmt.Fprintf(a.stdout, "queued backfill %s of %s (read events; walhook run sends them)\n", b.ID, b.Table)
	}
	for _, n := range res.NotBackfilled {
		fmt.Fprintf(a.stdout, "not backfilled: %s\n", n)
	}
	if !withBackfill {
		fmt.Fprintln(a.stdout, "to resync consumers, backfill the affected tables: walhook backfill --table T (or run this with --backfill)")
	}
	return nil
}

func orNone(lsn string) string {
	if lsn == "" {
		return "none"
	}
	return lsn
}
