package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/cdc/outbox"
	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/store"
	"github.com/walhook/walhook/relay"
)

func init() { register(newStatusCommand) }

func newStatusCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the slot's lag (or the outbox backlog), the retry queue, endpoint health and the instances",
		Long: `Shows the replication slot (active, confirmed LSN, lag) and the publication, or
in polling mode (mode = "outbox") the outbox table's backlog (rows waiting, age
of the oldest), then the retry queue, failed evaluations, each endpoint's health
and queue, and the walhook instances registered in the state schema (leader,
standby or poller, alive or dead, what each has in flight). It reads the
databases, so it works while walhook is down.`,
		Example: `  walhook status -c walhook.hcl
  walhook status --config walhook.hcl --json`,
		Args:        noArgs,
		Annotations: readsConfig(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.status(cmd.Context(), asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of text")
	return cmd
}

// openState connects to the state database and opens the store without
// creating it: store.ErrNoSchema when walhook has not run against it.
func openState(ctx context.Context, cfg *config.Config) (*store.Store, *pgxpool.Pool, error) {
	pool, err := pgxpool.New(ctx, cfg.StateURL())
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to the state database: %w", err)
	}
	st, err := store.OpenExisting(ctx, pool, cfg.State.Schema)
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	return st, pool, nil
}

// slotStatus is the replication slot as pg_replication_slots shows it.
type slotStatus struct {
	Name         string `json:"name"`
	Exists       bool   `json:"exists"`
	Active       bool   `json:"active"`
	ActivePID    *int32 `json:"active_pid,omitempty"`
	ConfirmedLSN string `json:"confirmed_lsn,omitempty"`
	LagBytes     int64  `json:"lag_bytes"`
	WALStatus    string `json:"wal_status,omitempty"`
	Publication  string `json:"publication"`
	PubExists    bool   `json:"publication_exists"`
	PubTables    int    `json:"publication_tables"`
	// Database is the database the slot belongs to; OtherDatabase is set
	// when that is not the config's (the slot is then not this config's,
	// and nothing else of it is shown).
	Database      string `json:"database,omitempty"`
	OtherDatabase bool   `json:"other_database,omitempty"`
	// RecordedLSN is the last position walhook recorded as confirmed.
	RecordedLSN string `json:"recorded_lsn,omitempty"`
	// Problem says why walhook cannot stream from the slot (a gap, with
	// the way out), if it cannot.
	Problem string `json:"problem,omitempty"`
}

// endpointStatus is one endpoint's health and queue.
type endpointStatus struct {
	ID             string     `json:"id"`
	Source         string     `json:"source"`
	Active         bool       `json:"active"`
	Disabled       bool       `json:"disabled"`
	DisabledReason string     `json:"disabled_reason,omitempty"`
	Failures       int        `json:"consecutive_failures"`
	FailingSince   *time.Time `json:"failing_since,omitempty"`
	LastSuccessAt  *time.Time `json:"last_success_at,omitempty"`
	Pending        int64      `json:"pending"`
	Due            int64      `json:"due"`
	Failed         int64      `json:"failed"`
	// ConcurrencyLimit is the running walhook's current limit (read from
	// its /metrics); absent when it cannot be reached.
	ConcurrencyLimit *int   `json:"concurrency_limit,omitempty"`
	RateLimit        string `json:"rate_limit,omitempty"`
}

// statusReport is everything `walhook status` shows.
type statusReport struct {
	// Slot is the replication slot; nil in polling mode (mode "outbox").
	Slot *slotStatus `json:"slot,omitempty"`
	// Outbox is the polled outbox table's backlog; nil in logical mode.
	Outbox *outboxStatus `json:"outbox,omitempty"`
	State  string        `json:"state"` // "ok" or why it is unavailable
	Queue  *struct {
		Pending   int64      `json:"pending"`
		Due       int64      `json:"due"`
		Failed    int64      `json:"failed"`
		OldestDue *time.Time `json:"oldest_due,omitempty"`
	} `json:"queue,omitempty"`
	Endpoints         []endpointStatus `json:"endpoints"`
	FailedEvaluations int              `json:"failed_evaluations"`
	// FailedEvaluationsMore is set when there are more than counted.
	FailedEvaluationsMore bool `json:"failed_evaluations_more,omitempty"`
	// Backfills are the unfinished ones and those finished within a day.
	Backfills []backfillStatus `json:"backfills"`
	// Instances are the walhook processes registered in the state schema.
	Instances []instanceStatus `json:"instances"`
}

// status prints the status report.
func (a *app) status(ctx context.Context, asJSON bool) error {
	cfg, err := a.config()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rep, err := collectStatus(ctx, cfg)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printStatus(a.stdout, rep)
	return nil
}

func collectStatus(ctx context.Context, cfg *config.Config) (*statusReport, error) {
	rep := &statusReport{State: "ok", Endpoints: []endpointStatus{}, Backfills: []backfillStatus{}, Instances: []instanceStatus{}}
	st, pool, err := openState(ctx, cfg)
	switch {
	case errors.Is(err, store.ErrNoSchema):
		rep.State = err.Error()
	case err != nil:
		return nil, err
	default:
		defer pool.Close()
	}
	if cfg.Source.Mode == config.ModeOutbox {
		rep.Outbox = readOutboxStatus(ctx, cfg)
		if st == nil {
			return rep, nil
		}
	} else {
		var records cdc.SlotRecords
		if st != nil {
			records = relay.SlotRecords(st)
		}
		check, err := cdc.CheckSlot(ctx, cfg.Source.URL, cfg.Source.Slot, cfg.Source.Publication, records)
		if err != nil {
			return nil, err
		}
		slot := newSlotStatus(check)
		rep.Slot = &slot
		if st == nil {
			if check.Slot.Exists && !check.Elsewhere() {
				rep.State = missingStateText(cfg, true, store.ErrNoSchema)
			}
			return rep, nil
		}
	}
	q, err := st.Stats(ctx)
	if err != nil {
		return nil, err
	}
	rep.Queue = &struct {
		Pending   int64      `json:"pending"`
		Due       int64      `json:"due"`
		Failed    int64      `json:"failed"`
		OldestDue *time.Time `json:"oldest_due,omitempty"`
	}{q.Pending, q.Due, q.Failed, q.OldestDue}
	health, err := st.AllHealth(ctx)
	if err != nil {
		return nil, err
	}
	hooks, err := st.AllWebhooks(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	add := func(id, source string, active bool) {
		if !seen[id] {
			seen[id] = true
			rep.Endpoints = append(rep.Endpoints, endpointStatus{ID: id, Source: source, Active: active})
		}
	}
	rates := map[string]string{}
	for _, ep := range cfg.Endpoints {
		add("cfg:"+ep.Name, "config", true)
		rates["cfg:"+ep.Name] = ep.RateLimit.String()
	}
	for _, h := range hooks {
		add(h.ID, "api", h.Active)
		rates[h.ID] = h.RateLimit
	}
	// Endpoints with health or deliveries but no longer configured.
	for _, h := range health {
		add(h.EndpointID, "gone", false)
	}
	queued := make([]string, 0, len(q.ByEndpoint))
	for id := range q.ByEndpoint {
		queued = append(queued, id)
	}
	sort.Strings(queued)
	for _, id := range queued {
		add(id, "gone", false)
	}
	byID := make(map[string]*endpointStatus, len(rep.Endpoints))
	for i := range rep.Endpoints {
		byID[rep.Endpoints[i].ID] = &rep.Endpoints[i]
	}
	for _, h := range health {
		e := byID[h.EndpointID]
		e.Disabled, e.DisabledReason, e.Failures = h.Disabled, h.DisabledReason, h.ConsecutiveFailures
		e.FailingSince, e.LastSuccessAt = h.FailingSince, h.LastSuccessAt
	}
	for id, eq := range q.ByEndpoint {
		e := byID[id]
		e.Pending, e.Due, e.Failed = eq.Pending, eq.Due, eq.Failed
	}
	limits := liveLimits(ctx, cfg)
	for i := range rep.Endpoints {
		e := &rep.Endpoints[i]
		e.RateLimit = rates[e.ID]
		if l, ok := limits[e.ID]; ok {
			e.ConcurrencyLimit = &l
		}
	}
	fails, err := st.ListFailedEvaluations(ctx, store.MaxListLimit)
	if err != nil {
		return nil, err
	}
	rep.FailedEvaluations = len(fails)
	rep.FailedEvaluationsMore = len(fails) == store.MaxListLimit
	if rep.Backfills, err = recentBackfills(ctx, st); err != nil {
		return nil, err
	}
	if rep.Instances, err = listInstances(ctx, st); err != nil {
		return nil, err
	}
	return rep, nil
}

// newSlotStatus is the slot part of the report: a slot of another
// database is named as such, not shown as this config's.
func newSlotStatus(c cdc.SlotCheck) slotStatus {
	s, pub := c.Slot, c.Publication
	out := slotStatus{Name: s.Name, Exists: s.Exists, Publication: pub.Name, PubExists: pub.Exists, PubTables: pub.Tables, Database: s.Database}
	if c.Record != nil {
		out.RecordedLSN = c.Record.Confirmed.String()
	}
	if c.Problem != nil {
		out.Problem = c.Problem.Error()
	}
	if c.Elsewhere() {
		out.OtherDatabase = true
		return out
	}
	out.Active, out.ConfirmedLSN, out.LagBytes, out.WALStatus = s.Active, s.ConfirmedLSN, s.LagBytes, s.WALStatus
	if s.ActivePID != 0 {
		out.ActivePID = &s.ActivePID
	}
	return out
}

// missingStateText says why there is no state schema: walhook has not run
// against the database yet, or (its slot is there) the schema was dropped
// since it did.
func missingStateText(cfg *config.Config, slotExists bool, err error) string {
	if !slotExists {
		return err.Error()
	}
	schema := cfg.State.Schema
	if schema == "" {
		schema = store.DefaultSchema
	}
	where := ""
	if cfg.State.URL != "" {
		where = " (or state.url now names another database)"
	}
	return fmt.Sprintf("state schema %q is missing, but slot %s exists, so walhook has run against this database: "+
		"the schema was dropped%s, and with it the pending retries, the attempts log and the webhooks registered through the API. "+
		"A running walhook is not ready (see /readyz) and settles nothing that needs the store; restart it to create the schema again",
		schema, cfg.Source.Slot, where)
}

func printStatus(w io.Writer, rep *statusReport) {
	if rep.Slot != nil {
		printSlot(w, rep.Slot)
	}
	if rep.Outbox != nil {
		printOutbox(w, rep.Outbox)
	}
	if rep.Queue == nil {
		fmt.Fprintf(w, "state: %s\n", rep.State)
		return
	}
	q := rep.Queue
	fmt.Fprintf(w, "retry queue: %d pending, %d due, %d failed", q.Pending, q.Due, q.Failed)
	if q.OldestDue != nil {
		fmt.Fprintf(w, ", oldest due for %s", time.Since(*q.OldestDue).Round(time.Second))
	}
	fmt.Fprintln(w)
	more := ""
	if rep.FailedEvaluationsMore {
		more = "+"
	}
	fmt.Fprintf(w, "failed evaluations: %d%s\n", rep.FailedEvaluations, more)
	printBackfills(w, rep.Backfills)
	printInstances(w, rep.Instances)
	if len(rep.Endpoints) == 0 {
		fmt.Fprintln(w, "endpoints: none")
		return
	}
	fmt.Fprintln(w, "endpoints:")
	eps := rep.Endpoints
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  ID\tSOURCE\tHEALTH\tPENDING\tDUE\tFAILED\tLIMIT")
	for _, e := range eps {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%d\t%d\t%s\n", e.ID, e.Source, healthText(e), e.Pending, e.Due, e.Failed, limitText(e))
	}
	tw.Flush()
}

// printSlot prints the slot and publication lines.
func printSlot(w io.Writer, s *slotStatus) {
	switch {
	case s.OtherDatabase:
		fmt.Fprintf(w, "slot %s: belongs to database %s, not this config's (walhook cannot use it; set source.slot to another name)\n", s.Name, s.Database)
	case !s.Exists && s.RecordedLSN != "":
		fmt.Fprintf(w, "slot %s: missing (walhook last confirmed %s)\n", s.Name, s.RecordedLSN)
	case !s.Exists:
		fmt.Fprintf(w, "slot %s: not created (walhook creates it at start)\n", s.Name)
	default:
		state := "inactive (no reader connected)"
		if s.Active {
			state = "active"
			if s.ActivePID != nil {
				state += fmt.Sprintf(" (pid %d)", *s.ActivePID)
			}
		}
		fmt.Fprintf(w, "slot %s: %s, confirmed %s, lag %s", s.Name, state, s.ConfirmedLSN, bytesText(s.LagBytes))
		if s.WALStatus != "" && s.WALStatus != "reserved" {
			fmt.Fprintf(w, ", wal_status %s", s.WALStatus)
		}
		fmt.Fprintln(w)
	}
	if s.PubExists {
		fmt.Fprintf(w, "publication %s: %d tables\n", s.Publication, s.PubTables)
	} else {
		fmt.Fprintf(w, "publication %s: not created\n", s.Publication)
	}
	if s.Problem != "" {
		fmt.Fprintf(w, "problem: %s\n", s.Problem)
	}
}

// outboxStatus is the polled outbox table's backlog.
type outboxStatus struct {
	Table string `json:"table"`
	// Rows is the rows waiting; an estimate when Estimated (beyond
	// outbox.BacklogCountCap).
	Rows             int64   `json:"rows_waiting"`
	Estimated        bool    `json:"rows_estimated,omitempty"`
	OldestAgeSeconds float64 `json:"oldest_age_seconds"`
	// Problem says why the backlog could not be read (the rest is zero).
	Problem string `json:"problem,omitempty"`
}

// readOutboxStatus reads the backlog of the config's outbox table.
func readOutboxStatus(ctx context.Context, cfg *config.Config) *outboxStatus {
	o := &outboxStatus{Table: cfg.Source.Outbox.Table}
	conn, err := pgx.Connect(ctx, cfg.Source.URL)
	if err != nil {
		o.Problem = fmt.Sprintf("connecting to the source database: %v", err)
		return o
	}
	defer conn.Close(context.WithoutCancel(ctx))
	b, err := outbox.ReadBacklog(ctx, conn, o.Table)
	if err != nil {
		o.Problem = err.Error()
		return o
	}
	o.Rows, o.Estimated, o.OldestAgeSeconds = b.Rows, b.Estimated, b.OldestAge.Seconds()
	return o
}

// printOutbox prints the outbox line.
func printOutbox(w io.Writer, o *outboxStatus) {
	if o.Problem != "" {
		fmt.Fprintf(w, "outbox %s: %s\n", o.Table, o.Problem)
		return
	}
	about := ""
	if o.Estimated {
		about = "about "
	}
	fmt.Fprintf(w, "outbox %s: %s%d rows waiting", o.Table, about, o.Rows)
	if o.Rows > 0 {
		fmt.Fprintf(w, ", oldest %s", (time.Duration(o.OldestAgeSeconds * float64(time.Second))).Round(time.Second))
	}
	fmt.Fprintln(w)
}

func healthText(e endpointStatus) string {
	switch {
	case e.Disabled:
		return "disabled: " + e.DisabledReason
	case !e.Active:
		return "inactive"
	case e.Failures > 0 && e.FailingSince != nil:
		return fmt.Sprintf("failing (%d in a row since %s)", e.Failures, e.FailingSince.UTC().Format(time.RFC3339))
	case e.Failures > 0:
		return fmt.Sprintf("failing (%d in a row)", e.Failures)
	}
	return "ok"
}

func bytesText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return strings.TrimSpace(fmt.Sprintf("%d bytes", n))
}
