package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/walhook/walhook/cdc"
)

func init() { register(newTailCommand) }

// tailOptions are the flags of `walhook tail`.
type tailOptions struct {
	url, tables, slot, publication string
	fromStart, keep                bool
}

func newTailCommand(a *app) *cobra.Command {
	var o tailOptions
	cmd := &cobra.Command{
		Use:   "tail --url URL --tables contacts,deals",
		Short: "Print captured row changes as JSON lines (for debugging)",
		Long: `Prints every committed row change of the given tables as one JSON line on
stdout (schema, table, op, new, old, unchanged, xid, commit_time,
commit_lsn, end_lsn, position), and acknowledges each transaction once
printed. Logs go to stderr. Stop with Ctrl-C.

The slot (default walhook_tail) and the publication (default walhook_tail)
are created if missing. When tail created the slot, it drops it and the
publication it created on exit, so a debugging session leaves nothing
pinning WAL; pass --keep to keep them (then drop them later with
'walhook teardown' or pg_drop_replication_slot). If tail is killed with
SIGKILL, the slot it created stays: drop it by hand.

An existing slot is only read with --from-start: tail then prints the
backlog from the slot's confirmed position and acknowledges it, which moves
the slot. Never point --from-start at the slot of a running walhook.
Note that tail sets the publication's table list to --tables.`,
		Example: `  walhook tail --url "$DATABASE_URL" --tables contacts,deals
  walhook tail --url "$DATABASE_URL" --tables public.contacts --slot debug --keep --log-format console`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.url == "" || o.tables == "" {
				return usageErrorf("--url and --tables are required")
			}
			log, err := a.logger()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return a.tail(ctx, log, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.url, "url", "", "source database URL or DSN (required)")
	f.StringVar(&o.tables, "tables", "", `comma-separated tables, "schema.table" or "table" in public (required)`)
	f.StringVar(&o.slot, "slot", "walhook_tail", "replication slot to read")
	f.StringVar(&o.publication, "publication", "walhook_tail", "publication to read through")
	f.BoolVar(&o.fromStart, "from-start", false, "read an existing slot from its confirmed position (its backlog)")
	f.BoolVar(&o.keep, "keep", false, "keep a slot and publication that tail created when it exits")
	return cmd
}

// tail prints the changes of o.tables until ctx is done.
func (a *app) tail(ctx context.Context, log zerolog.Logger, o tailOptions) error {
	cfg := cdc.ReaderConfig{
		URL:         o.url,
		Slot:        o.slot,
		Publication: o.publication,
		Tables:      splitList(o.tables),
		Logger:      log,
	}
	slot, pub, err := cdc.Inspect(ctx, o.url, o.slot, o.publication)
	if err != nil {
		return err
	}
	slotExisted, pubExisted := slot.Exists, pub.Exists
	if slotExisted && !o.fromStart {
		return fmt.Errorf("replication slot %s already exists: pass --from-start to read its backlog (tail acknowledges what it prints, moving the slot), or choose another --slot", o.slot)
	}
	if err := cdc.Prepare(ctx, "", cfg); err != nil {
		return err
	}
	if !slotExisted && !o.keep {
		defer dropTailObjects(a.stderr, o.url, o.slot, o.publication, pubExisted)
	}

	reader := cdc.NewReader(cfg)
	out := bufio.NewWriter(a.stdout)
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	sink := cdc.SinkFunc(func(_ context.Context, tx cdc.Transaction) error {
		for _, c := range tx.Changes {
			if err := enc.Encode(tailLine(c)); err != nil {
				return fmt.Errorf("printing change: %w", err)
			}
		}
		if err := out.Flush(); err != nil {
			return fmt.Errorf("printing changes: %w", err)
		}
		reader.Ack(tx.EndLSN)
		return nil
	})
	log.Info().Str("slot", o.slot).Strs("tables", cfg.Tables).Msg("tailing; Ctrl-C to stop")
	return reader.Run(ctx, sink)
}

// tailJSON is one printed change.
type tailJSON struct {
	Schema     string         `json:"schema"`
	Table      string         `json:"table"`
	Op         cdc.Op         `json:"op"`
	New        map[string]any `json:"new"`
	Old        map[string]any `json:"old"`
	Unchanged  []string       `json:"unchanged,omitempty"`
	XID        uint32         `json:"xid"`
	CommitTime string         `json:"commit_time"`
	CommitLSN  string         `json:"commit_lsn"`
	EndLSN     string         `json:"end_lsn"`
	Position   int            `json:"position"`
}

func tailLine(c cdc.Change) tailJSON {
	return tailJSON{
		Schema: c.Schema, Table: c.Table, Op: c.Op, New: c.New, Old: c.Old, Unchanged: c.Unchanged,
		XID: c.XID, CommitTime: c.CommitTime.UTC().Format(time.RFC3339Nano),
		CommitLSN: c.CommitLSN.String(), EndLSN: c.EndLSN.String(), Position: c.Position,
	}
}

// dropTailObjects drops the slot tail created, and the publication if tail
// created it too. The walsender may need a moment to release the slot.
func dropTailObjects(stderr io.Writer, url, slot, publication string, pubExisted bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	pub := publication
	if pubExisted {
		pub = ""
	}
	for {
		err := cdc.Teardown(ctx, url, slot, pub)
		if err == nil {
			fmt.Fprintf(stderr, "walhook tail: dropped replication slot %s\n", slot)
			return
		}
		select {
		case <-ctx.Done():
			fmt.Fprintf(stderr, "walhook tail: could not drop replication slot %s, drop it by hand: %v\n", slot, err)
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}
