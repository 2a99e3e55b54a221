package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/spf13/cobra"

	"github.com/walhook/walhook/internal/store"
)

func init() { register(newEvaluationsCommand) }

// evaluationsNote ends the help of every evaluations command.
const evaluationsNote = `A failed evaluation is a rule that failed on one row (or an endpoint body
that could not be rendered): the change is kept, never dropped. Fix the rule or
the body in the config, restart walhook, then replay: a running walhook
re-evaluates the kept change with its current rules and sends the events under
the ids they would have had. These commands read and write the state database
directly; the running walhook picks up replays within a few seconds.`

func newEvaluationsCommand(a *app) *cobra.Command {
	return newGroup("evaluations", "List or replay failed rule evaluations (list, replay)",
		`  walhook evaluations list -c walhook.hcl --rule deal.won
  walhook evaluations replay -c walhook.hcl --rule deal.won`,
		newEvaluationsListCommand(a), newEvaluationsReplayCommand(a))
}

func newEvaluationsListCommand(a *app) *cobra.Command {
	var f store.EvaluationFilter
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List failed evaluations, newest first",
		Long:  "Lists failed evaluations, newest first.\n\n" + evaluationsNote,
		Example: `  walhook evaluations list -c walhook.hcl --rule deal.won
  walhook evaluations list -c walhook.hcl --table public.deals --status failed --json`,
		Args:        noArgs,
		Annotations: readsConfig(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.Limit < 1 || f.Limit > store.MaxListLimit {
				return usageErrorf("--limit must be from 1 to %d", store.MaxListLimit)
			}
			if err := checkEvaluationStatus(f.Status); err != nil {
				return err
			}
			return a.withState(cmd.Context(), func(ctx context.Context, st *store.Store) error {
				fs, _, err := st.ListEvaluations(ctx, f)
				if err != nil {
					return err
				}
				printEvaluations(a.stdout, fs, asJSON)
				return nil
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.Rule, "rule", "", `only this rule (an event name, "endpoint NAME body", "outbox")`)
	fl.StringVar(&f.Table, "table", "", `only this table ("schema.table")`)
	fl.StringVar(&f.Status, "status", "", "failed, replay_requested, replaying or replayed")
	fl.IntVar(&f.Limit, "limit", 50, "at most this many (up to 1000)")
	fl.BoolVar(&asJSON, "json", false, "print JSON lines instead of a table (with the rows, which may hold personal data)")
	return cmd
}

func checkEvaluationStatus(s string) error {
	switch s {
	case "", store.EvaluationFailed, store.EvaluationReplayRequested, store.EvaluationReplaying, store.EvaluationReplayed:
		return nil
	}
	return usageErrorf("--status must be failed, replay_requested, replaying or replayed (got %q)", s)
}

func newEvaluationsReplayCommand(a *app) *cobra.Command {
	var all bool
	var f store.EvaluationFilter
	cmd := &cobra.Command{
		Use:   "replay [ID...|--all|--rule RULE]",
		Short: "Replay failed evaluations with the running config",
		Long: `Asks the running walhook to replay failed evaluations: by id, every failed one
(--all), or those of one rule or table. A replayed evaluation is marked
replayed, or failed again with the new error.

` + evaluationsNote,
		Example: `  walhook evaluations replay -c walhook.hcl 42 43
  walhook evaluations replay -c walhook.hcl --rule deal.won
  walhook evaluations replay -c walhook.hcl --all`,
		Annotations: readsConfig(),
		RunE: func(cmd *cobra.Command, args []string) error {
			filtered := all || f.Rule != "" || f.Table != ""
			if filtered == (len(args) > 0) {
				return usageErrorf("give evaluation ids, or --all, --rule or --table")
			}
			ids := make([]int64, len(args))
			for i, s := range args {
				id, err := strconv.ParseInt(s, 10, 64)
				if err != nil || id <= 0 {
					return usageErrorf("%q is not an evaluation id (a whole number, from walhook evaluations list)", s)
				}
				ids[i] = id
			}
			return a.withState(cmd.Context(), func(ctx context.Context, st *store.Store) error {
				if filtered {
					n, err := st.RequestReplaysWhere(ctx, f)
					if err != nil {
						return err
					}
					fmt.Fprintf(a.stdout, "%d failed evaluations queued for replay\n", n)
					return nil
				}
				queued, err := st.RequestReplays(ctx, ids)
				if err != nil {
					return err
				}
				done := map[int64]bool{}
				for _, id := range queued {
					done[id] = true
					fmt.Fprintf(a.stdout, "%d queued for replay\n", id)
				}
				var missing error
				for _, id := range ids {
					if !done[id] {
						fmt.Fprintf(a.stderr, "walhook: failed evaluation %d not queued: not found, kept without its change, or being replayed now\n", id)
						missing = exitStatus(1)
					}
				}
				return missing
			})
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&all, "all", false, "every failed evaluation")
	fl.StringVar(&f.Rule, "rule", "", "the failed evaluations of this rule")
	fl.StringVar(&f.Table, "table", "", `the failed evaluations of this table ("schema.table")`)
	return cmd
}

func printEvaluations(w io.Writer, fs []store.FailedEvaluation, asJSON bool) {
	if asJSON {
		enc := json.NewEncoder(w)
		for _, f := range fs {
			_ = enc.Encode(map[string]any{
				"id": f.ID, "rule": f.Rule, "table": f.Table, "op": f.Op, "xid": f.XID,
				"commit_lsn": pglogrepl.LSN(f.CommitLSN).String(), "position": f.Position, "error": f.Error,
				"row": json.RawMessage(orNull(f.Row)), "old": json.RawMessage(orNull(f.Old)), "event_id": f.EventID,
				"status": f.Status, "replayable": f.Replayable, "replays": f.Replays, "created_at": f.CreatedAt,
			})
		}
		return
	}
	if len(fs) == 0 {
		fmt.Fprintln(w, "no failed evaluations")
		return
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tRULE\tTABLE\tOP\tLSN\tPOS\tSTATUS\tERROR\tCREATED")
	for _, f := range fs {
		msg := strings.ReplaceAll(f.Error, "\t", " ")
		if len(msg) > 60 {
			msg = strings.ToValidUTF8(msg[:57], "") + "..."
		}
		status := f.Status
		if !f.Replayable {
			status += " (not replayable)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", f.ID, f.Rule, f.Table, f.Op, pglogrepl.LSN(f.CommitLSN),
			f.Position, status, msg, f.CreatedAt.UTC().Format(time.RFC3339))
	}
	tw.Flush()
}

func orNull(b []byte) []byte {
	if len(b) == 0 {
		return []byte("null")
	}
	return b
}
