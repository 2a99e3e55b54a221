package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/walhook/walhook/internal/store"
)

func init() {
	register(command{name: "deliveries", summary: "list, retry or recover deliveries in the state database", run: runDeliveries})
}

func runDeliveries(args []string) int {
	return deliveries(context.Background(), args, os.Stdout, os.Stderr)
}

const deliveriesUsage = `Usage:
  walhook deliveries list    -c FILE [--endpoint ID] [--status pending|delivered|failed] [--event-type T] [--since T] [--limit N] [--json]
  walhook deliveries retry   -c FILE DELIVERY_ID...
  walhook deliveries recover -c FILE --endpoint ID --since T

--since is an RFC 3339 time or a duration back from now ("24h", "30m").
Endpoint ids are "cfg:<name>" for config endpoints and "ep_…" for API ones.
These commands read and write the state database directly; the running
walhook picks up retried deliveries at its next poll.
`

// deliveries runs `walhook deliveries list|retry|recover`.
func deliveries(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stderr, deliveriesUsage)
		return 2
	}
	sub := args[0]
	fs := flag.NewFlagSet("deliveries "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("c", "walhook.hcl", "config file")
	endpoint := fs.String("endpoint", "", `endpoint id ("cfg:<name>" or "ep_…")`)
	status := fs.String("status", "", "pending, delivered or failed")
	eventType := fs.String("event-type", "", "only this event type")
	since := fs.String("since", "", `RFC 3339 time, or a duration back from now ("24h")`)
	limit := fs.Int("limit", 50, "at most this many (up to 1000)")
	asJSON := fs.Bool("json", false, "print JSON lines instead of a table")
	switch sub {
	case "list", "retry", "recover":
	default:
		fmt.Fprintf(stderr, "walhook: unknown deliveries command %q\n\n%s", sub, deliveriesUsage)
		return 2
	}
	ids, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return 2
	}
	var sinceTime time.Time
	if *since != "" {
		t, err := parseSince(*since, time.Now())
		if err != nil {
			fmt.Fprintf(stderr, "walhook: --since: %v\n", err)
			return 2
		}
		sinceTime = t
	}
	switch {
	case sub == "retry" && len(ids) == 0:
		fmt.Fprintln(stderr, "walhook: deliveries retry needs at least one delivery id")
		return 2
	case sub == "recover" && (*endpoint == "" || sinceTime.IsZero()):
		fmt.Fprintln(stderr, "walhook: deliveries recover needs --endpoint and --since")
		return 2
	case sub == "list" && (*limit < 1 || *limit > store.MaxListLimit):
		fmt.Fprintf(stderr, "walhook: --limit must be from 1 to %d\n", store.MaxListLimit)
		return 2
	}
	cfg, ok := loadConfig(*cfgPath)
	if !ok {
		return 1
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	st, pool, err := openState(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "walhook: %v\n", err)
		return 1
	}
	defer pool.Close()

	switch sub {
	case "list":
		ds, _, err := st.ListDeliveries(ctx, store.DeliveryFilter{EndpointID: *endpoint, Status: *status,
			EventType: *eventType, Since: sinceTime, Limit: *limit})
		if err != nil {
			fmt.Fprintf(stderr, "walhook: %v\n", err)
			return 1
		}
		printDeliveries(stdout, ds, *asJSON)
	case "retry":
		code := 0
		for _, id := range ids {
			d, err := st.Retry(ctx, id)
			if errors.Is(err, store.ErrNotFound) {
				fmt.Fprintf(stderr, "walhook: delivery %s not found\n", id)
				code = 1
				continue
			}
			if err != nil {
				fmt.Fprintf(stderr, "walhook: %v\n", err)
				return 1
			}
			fmt.Fprintf(stdout, "%s (%s to %s) queued for retry\n", d.ID, d.EventType, d.EndpointID)
		}
		return code
	case "recover":
		n, err := st.Recover(ctx, *endpoint, sinceTime)
		if err != nil {
			fmt.Fprintf(stderr, "walhook: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "%d failed deliveries of %s since %s queued again\n", n, *endpoint, sinceTime.UTC().Format(time.RFC3339))
	}
	return 0
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
