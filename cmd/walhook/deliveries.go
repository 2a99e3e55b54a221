package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/walhook/walhook/internal/store"
)

func init() { register(newDeliveriesCommand) }

// deliveriesNote ends the help of every deliveries command.
const deliveriesNote = `--since is an RFC 3339 time or a duration back from now ("24h", "30m").
Endpoint ids are "cfg:<name>" for config endpoints and "ep_…" for API ones.
These commands read and write the state database directly; the running
walhook picks up retried deliveries at its next poll.`

func newDeliveriesCommand(a *app) *cobra.Command {
	return newGroup("deliveries", "List, retry or recover deliveries in the state database (list, retry, recover)",
		`  walhook deliveries list -c walhook.hcl --status failed --since 24h
  walhook deliveries retry -c walhook.hcl DELIVERY_ID
  walhook deliveries recover -c walhook.hcl --endpoint cfg:crm --since 24h`,
		newDeliveriesListCommand(a), newDeliveriesRetryCommand(a), newDeliveriesRecoverCommand(a))
}

func newDeliveriesListCommand(a *app) *cobra.Command {
	var f store.DeliveryFilter
	var since string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List deliveries, newest first",
		Long:  "Lists the delivery log, newest first.\n\n" + deliveriesNote,
		Example: `  walhook deliveries list -c walhook.hcl --status failed --since 24h
  walhook deliveries list -c walhook.hcl --endpoint cfg:crm --json`,
		Args:        noArgs,
		Annotations: readsConfig(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if f.Since, err = parseSinceFlag(since); err != nil {
				return err
			}
			if f.Limit < 1 || f.Limit > store.MaxListLimit {
				return usageErrorf("--limit must be from 1 to %d", store.MaxListLimit)
			}
			return a.withState(cmd.Context(), func(ctx context.Context, st *store.Store) error {
				ds, _, err := st.ListDeliveries(ctx, f)
				if err != nil {
					return err
				}
				printDeliveries(a.stdout, ds, asJSON)
				return nil
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.EndpointID, "endpoint", "", `endpoint id ("cfg:<name>" or "ep_…")`)
	fl.StringVar(&f.Status, "status", "", "pending, delivered or failed")
	fl.StringVar(&f.EventType, "event-type", "", "only this event type")
	fl.StringVar(&since, "since", "", `RFC 3339 time, or a duration back from now ("24h")`)
	fl.IntVar(&f.Limit, "limit", 50, "at most this many (up to 1000)")
	fl.BoolVar(&asJSON, "json", false, "print JSON lines instead of a table")
	return cmd
}

func newDeliveriesRetryCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:         "retry DELIVERY_ID...",
		Short:       "Queue deliveries again",
		Long:        "Queues the deliveries again, whatever their status.\n\n" + deliveriesNote,
		Example:     `  walhook deliveries retry -c walhook.hcl dlv_3f2a9c dlv_77b1e0`,
		Args:        minArgs(1, "at least one delivery id"),
		Annotations: readsConfig(),
		RunE: func(cmd *cobra.Command, ids []string) error {
			return a.withState(cmd.Context(), func(ctx context.Context, st *store.Store) error {
				var missing error
				for _, id := range ids {
					d, err := st.Retry(ctx, id)
					if errors.Is(err, store.ErrNotFound) {
						fmt.Fprintf(a.stderr, "walhook: delivery %s not found\n", id)
						missing = exitStatus(1)
						continue
					}
					if err != nil {
						return err
					}
					fmt.Fprintf(a.stdout, "%s (%s to %s) queued for retry\n", d.ID, d.EventType, d.EndpointID)
				}
				return missing
			})
		},
	}
}

func newDeliveriesRecoverCommand(a *app) *cobra.Command {
	var endpoint, since string
	cmd := &cobra.Command{
		Use:         "recover --endpoint ID --since T",
		Short:       "Queue an endpoint's failed deliveries again",
		Long:        "Queues the failed deliveries of one endpoint since a time again.\n\n" + deliveriesNote,
		Example:     `  walhook deliveries recover -c walhook.hcl --endpoint cfg:crm --since 2026-01-02T00:00:00Z`,
		Args:        noArgs,
		Annotations: readsConfig(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			sinceTime, err := parseSinceFlag(since)
			if err != nil {
				return err
			}
			if endpoint == "" || sinceTime.IsZero() {
				return usageErrorf("--endpoint and --since are required")
			}
			return a.withState(cmd.Context(), func(ctx context.Context, st *store.Store) error {
				n, err := st.Recover(ctx, endpoint, sinceTime)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "%d failed deliveries of %s since %s queued again\n", n, endpoint, sinceTime.UTC().Format(time.RFC3339))
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&endpoint, "endpoint", "", `endpoint id ("cfg:<name>" or "ep_…") (required)`)
	cmd.Flags().StringVar(&since, "since", "", `RFC 3339 time, or a duration back from now ("24h") (required)`)
	return cmd
}

// withState loads the config, opens the state store (without creating it)
// and calls fn with a one-minute deadline.
func (a *app) withState(ctx context.Context, fn func(context.Context, *store.Store) error) error {
	cfg, err := a.config()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	st, pool, err := openState(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	return fn(ctx, st)
}

// parseSinceFlag reads --since: "" is the zero time.
func parseSinceFlag(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := parseSince(v, time.Now())
	if err != nil {
		return time.Time{}, usageErrorf("--since: %v", err)
	}
	return t, nil
}

// parseSince reads an RFC 3339 time or a duration back from now.
func parseSince(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration such as 24h", v)
}

func printDeliveries(w io.Writer, ds []store.Delivery, asJSON bool) {
	if asJSON {
		enc := json.NewEncoder(w)
		for _, d := range ds {
			_ = enc.Encode(map[string]any{
				"id": d.ID, "event_id": d.EventID, "event_type": d.EventType, "endpoint_id": d.EndpointID,
				"status": d.Status, "attempts": d.Attempts, "last_status": d.LastStatus, "last_error": d.LastError,
				"next_attempt_at": d.NextAttemptAt, "created_at": d.CreatedAt,
			})
		}
		return
	}
	if len(ds) == 0 {
		fmt.Fprintln(w, "no deliveries")
		return
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tENDPOINT\tEVENT\tSTATUS\tATTEMPTS\tLAST ERROR\tCREATED")
	for _, d := range ds {
		lastErr := d.LastError
		if len(lastErr) > 60 {
			lastErr = strings.ToValidUTF8(lastErr[:57], "") + "..."
		}
		lastErr = strings.ReplaceAll(lastErr, "\t", " ")
		if lastErr == "" {
			lastErr = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", d.ID, d.EndpointID, d.EventType, d.Status, d.Attempts, lastErr,
			d.CreatedAt.UTC().Format(time.RFC3339))
	}
	tw.Flush()
}
