package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/walhook/walhook/internal/backfill"
	"github.com/walhook/walhook/internal/store"
)

func init() { register(newBackfillCommand) }

func newBackfillCommand(a *app) *cobra.Command {
	var af apiFlags
	var req backfill.Request
	var rate, cancelID, followID string
	var detach bool
	cmd := &cobra.Command{
		Use:   "backfill --table T [--where SQL] [--event NAME] [--endpoint NAME | --webhook ID] [--rate N/s]",
		Short: "Send the rows already in a table as events (op \"read\"), through the running walhook",
		Long: `Sends the rows already in a table as events: every event block of the table
whose on list has "read" runs on each row (op is "read", new is the row, old
is null). The running walhook that holds the slot reads the table in primary
key chunks, in step with the live stream, so no row's events arrive out of
order.

The command submits the backfill through the admin API (or, when the config
has no admin block and no --api is given, into the state schema, where the
running walhook picks it up) and follows it with a progress bar; it exits 0
when the backfill completes. Ctrl-C stops following, not the backfill:
--follow ID follows it again, --cancel ID cancels it.

` + webhooksNote,
		Example: `  walhook backfill -c walhook.hcl --table contacts
  walhook backfill -c walhook.hcl --table deals --where "updated_at > now() - interval '7 days'" --endpoint crm
  walhook backfill -c walhook.hcl --table contacts --webhook ep_2b7c --rate 500/s
  walhook backfill -c walhook.hcl --follow bf_3k2j
  walhook backfill -c walhook.hcl --cancel bf_3k2j`,
		Args:        noArgs,
		Annotations: readsConfig(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if req.Table == "" && cancelID == "" && followID == "" {
				return usageErrorf("--table is required (or --cancel ID, or --follow ID)")
			}
			if req.Endpoint != "" && req.Webhook != "" {
				return usageErrorf("give --endpoint or --webhook, not both")
			}
			var err error
			if req.Rate, err = parseRate(rate); err != nil {
				return usageErrorf("%v", err)
			}
			b, err := a.backfillBackend(ctx, af)
			if err != nil {
				return err
			}
			defer b.close()
			switch {
			case cancelID != "":
				cctx, cancel := context.WithTimeout(ctx, requestTimeout)
				defer cancel()
				st, err := b.cancel(cctx, cancelID)
				if err != nil {
					return err
				}
				// Chunks read before the cancel still go out: report the
				// count once the runner has recorded them.
				st = settledCounts(cctx, b, st)
				fmt.Fprintf(a.stdout, "cancelled %s after %d rows read, %d sent as read events\n", st.ID, st.RowsDone, st.RowsSent)
				return nil
			case followID != "":
				return followBackfill(ctx, b, followID, a.stdout, a.stderr)
			}
			sctx, cancel := context.WithTimeout(ctx, requestTimeout)
			defer cancel()
			st, err := b.submit(sctx, req)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "backfill %s of %s started\n", st.ID, st.Table)
			if detach {
				return nil
			}
			return followBackfill(ctx, b, st.ID, a.stdout, a.stderr)
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Table, "table", "", `table to read ("schema.table" or "table" in public)`)
	f.StringVar(&req.Where, "where", "", "SQL condition the rows must meet")
	f.StringVar(&req.Event, "event", "", "only this event (its block must read the table)")
	f.StringVar(&req.Endpoint, "endpoint", "", "send only to this endpoint block")
	f.StringVar(&req.Webhook, "webhook", "", "send only to this API webhook (ep_…)")
	f.StringVar(&rate, "rate", "", "rows read per second, like 2000/s (default: no limit)")
	f.IntVar(&req.ChunkSize, "chunk-size", 0, "the most rows per chunk (default 2000; chunks are sized to about 15ms of delivery)")
	f.StringVar(&req.IDSeed, "id-seed", "", "seed of the event ids (default: derived from table, where, event and target, so a rerun sends the same ids)")
	f.StringVar(&cancelID, "cancel", "", "cancel this backfill")
	f.StringVar(&followID, "follow", "", "follow this backfill's progress (after --detach or Ctrl-C)")
	f.BoolVar(&detach, "detach", false, "submit and exit without following")
	f.StringVar(&af.api, "api", "", "admin API base URL (default http://<admin.listen> of the config)")
	f.StringVar(&af.token, "token", "", "admin API bearer token (default $WALHOOK_ADMIN_TOKEN, then admin.token)")
	return cmd
}

// backfillBackend picks where backfills go: the admin API when --api is
// given or the config has an admin block, else the state schema.
func (a *app) backfillBackend(ctx context.Context, af apiFlags) (backfillBackend, error) {
	if af.api == "" {
		cfg, err := a.config()
		if err != nil {
			return nil, err
		}
		if cfg.Admin == nil {
			return newStateBackfills(ctx, cfg)
		}
	}
	c, err := a.newAPIClient(af.api, af.token)
	if err != nil {
		return nil, err
	}
	return apiBackfills{c}, nil
}

// settledCounts waits (within ctx) for the runner to stop reading a
// cancelled backfill, so its counts include the chunks read before the
// cancel, which still go out; without an API it returns st as it is.
func settledCounts(ctx context.Context, b backfillBackend, st backfillStatus) backfillStatus {
	for st.Active {
		select {
		case <-ctx.Done():
			return st
		case <-time.After(100 * time.Millisecond):
		}
		next, err := b.get(ctx, st.ID)
		if err != nil {
			return st
		}
		st = next
	}
	return st
}

// parseRate reads "2000/s" or "2000" as rows per second; "" is no limit.
func parseRate(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(s), "/s"))
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("--rate %q: give rows per second, like 2000/s", s)
	}
	return n, nil
}

// followBackfill shows the backfill's progress until it ends: exit 0 when
// it completes, 1 when it fails or is cancelled. When ctx ends (Ctrl-C) it
// stops following and leaves the backfill running.
func followBackfill(ctx context.Context, b backfillBackend, id string, stdout, stderr io.Writer) error {
	live := false
	if f, ok := stderr.(*os.File); ok {
		live = isTerminal(f)
	}
	bar := progressBar{began: time.Now()}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	lastLine := time.Time{}
	for {
		rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		st, err := b.get(rctx, id)
		cancel()
		if ctx.Err() != nil {
			fmt.Fprintf(stderr, "\ndetached: backfill %s keeps running (walhook backfill --follow %s follows it again, --cancel %s stops it)\n", id, id, id)
			return nil
		}
		if err != nil {
			fmt.Fprintf(stderr, "reading the backfill's progress: %v\n", err)
		} else {
			line := bar.line(st, time.Now())
			switch {
			case live:
				fmt.Fprintf(stderr, "\r%s", line)
			case time.Since(lastLine) >= 5*time.Second || st.Status != "running" && st.Status != "pending":
				fmt.Fprintln(stderr, line)
				lastLine = time.Now()
			}
			switch st.Status {
			case "completed":
				if live {
					fmt.Fprintln(stderr)
				}
				fmt.Fprintf(stdout, "backfill %s completed: %d rows read, %d sent as read events\n", id, st.RowsDone, st.RowsSent)
				return nil
			case "failed", "cancelled":
				if live {
					fmt.Fprintln(stderr)
				}
				msg := fmt.Sprintf("backfill %s %s after %d rows", id, st.Status, st.RowsDone)
				if st.LastError != "" {
					msg += ": " + st.LastError
				}
				return errors.New(msg)
			}
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
}

// progressBar renders one progress line: bar, rows done/total, rate, ETA.
type progressBar struct {
	began     time.Time
	firstDone int64
	seen      bool
}

func (p *progressBar) line(st backfillStatus, now time.Time) string {
	if !p.seen {
		p.firstDone, p.seen = st.RowsDone, true
	}
	const width = 30
	total := int64(-1)
	if st.RowsTotal != nil {
		total = max(*st.RowsTotal, st.RowsDone)
	}
	elapsed := now.Sub(p.began).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(st.RowsDone-p.firstDone) / elapsed
	}
	var b strings.Builder
	filled := 0
	switch {
	case st.Status == "completed" || total == 0:
		// Rows deleted after the count leave done short of total.
		filled = width
	case total > 0:
		filled = int(float64(width) * float64(st.RowsDone) / float64(total))
	}
	b.WriteString("[" + strings.Repeat("#", filled) + strings.Repeat(".", width-filled) + "] ")
	if total >= 0 {
		fmt.Fprintf(&b, "%d/%d rows", st.RowsDone, total)
	} else {
		fmt.Fprintf(&b, "%d rows", st.RowsDone)
	}
	fmt.Fprintf(&b, "  %.0f rows/s", rate)
	switch {
	case st.Status != "running" && st.Status != "pending":
		b.WriteString("  " + st.Status)
	case total > 0 && rate > 0:
		eta := time.Duration(float64(total-st.RowsDone) / rate * float64(time.Second)).Round(time.Second)
		fmt.Fprintf(&b, "  ETA %s", eta)
	default:
		b.WriteString("  ETA -")
	}
	return b.String()
}

// backfillStatus is a backfill as the API and `walhook status` show it.
type backfillStatus struct {
	ID        string `json:"id"`
	Table     string `json:"table"`
	Status    string `json:"status"`
	RowsTotal *int64 `json:"rows_total"`
	RowsDone  int64  `json:"rows_done"`
	RowsSent  int64  `json:"rows_sent"`
	LastError string `json:"last_error,omitempty"`
	// Active is true while a runner reads the backfill (API only).
	Active bool `json:"active"`
}

// recentBackfills lists the unfinished backfills and those finished within
// a day, newest first.
func recentBackfills(ctx context.Context, st *store.Store) ([]backfillStatus, error) {
	bs, err := st.ListBackfills(ctx, 20)
	if err != nil {
		return nil, err
	}
	out := []backfillStatus{}
	for _, b := range bs {
		if b.Status.Finished() && b.FinishedAt != nil && time.Since(*b.FinishedAt) > 24*time.Hour {
			continue
		}
		out = append(out, backfillStatus{ID: b.ID, Table: b.Table, Status: string(b.Status), RowsTotal: b.RowsTotal,
			RowsDone: b.RowsDone, RowsSent: b.RowsSent, LastError: b.LastError})
	}
	return out, nil
}

// printBackfills prints one line per backfill (progress of settled chunks).
func printBackfills(w io.Writer, bs []backfillStatus) {
	for _, b := range bs {
		fmt.Fprintf(w, "backfill %s of %s: %s, %d", b.ID, b.Table, b.Status, b.RowsDone)
		if b.RowsTotal != nil && *b.RowsTotal > 0 {
			fmt.Fprintf(w, "/%d rows (%d%%)", *b.RowsTotal, min(100, b.RowsDone*100 / *b.RowsTotal))
		} else {
			fmt.Fprint(w, " rows")
		}
		fmt.Fprintf(w, ", %d sent", b.RowsSent)
		if b.LastError != "" {
			fmt.Fprintf(w, ": %s", b.LastError)
		}
		fmt.Fprintln(w)
	}
}
