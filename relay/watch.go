package relay

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/metrics"
)

// defaultWatchInterval is how often the watcher reads the slot and the
// watched tables (Options.WatchInterval overrides it).
const defaultWatchInterval = 5 * time.Second

// watchTimeout bounds one round of the watcher's reads and repairs.
const watchTimeout = 10 * time.Second

// watcher reads Postgres's own view of the slot and of the watched tables
// every interval, streaming or not (docs/operations.md, "Schema changes
// under the rules"): it feeds the lag gauges, puts a table that was
// re-created (or taken out of the publication) back in the publication and
// says what was missed, and reports a table renamed or dropped, once in the
// log and for as long as it lasts in /readyz.
type watcher struct {
	url, slot, publication string
	tables                 []string
	uses                   map[string]cdc.TableUse
	interval               time.Duration
	reader                 *cdc.Reader
	metrics                *metrics.Metrics // nil: nothing counted
	records                capturedRecords  // nil: nothing remembered across restarts
	log                    zerolog.Logger

	mu       sync.Mutex // a leaf: guards what Ready and the gauges read
	view     cdc.SlotView
	viewOK   bool
	problems map[string]string // configured table → why its rows are not captured

	// The rest belongs to run's goroutine.
	conn     *pgx.Conn
	known    map[string]uint32 // configured table → the oid whose rows were captured
	loaded   bool              // known holds what records had at start
	recorded map[string]uint32 // configured table → the oid records hold
	fromLast map[string]bool   // configured table → known came from an earlier run
	reported map[string]string // configured table → the finding already logged
	sighted  map[string]string // configured table → a state seen once, reported if seen again
	readErr  string            // the read error last logged
	recErr   string            // the error reading records last logged
}

func newWatcher(cfg slotWatchConfig) *watcher {
	if cfg.interval <= 0 {
		cfg.interval = defaultWatchInterval
	}
	return &watcher{
		url: cfg.url, slot: cfg.slot, publication: cfg.publication, tables: cfg.tables, uses: cfg.uses,
		interval: cfg.interval, reader: cfg.reader, metrics: cfg.metrics, records: cfg.records,
		log:      cfg.log.With().Str("component", "watch").Str("slot", cfg.slot).Logger(),
		problems: map[string]string{}, known: map[string]uint32{}, reported: map[string]string{}, sighted: map[string]string{},
		recorded: map[string]uint32{}, fromLast: map[string]bool{},
	}
}

// capturedRecords keeps, in the state store, the oid each configured
// table stood for when it was last captured, so that a table dropped,
// re-created or renamed while no walhook ran is reported at the next
// start like one changed under a running walhook.
type capturedRecords interface {
	CapturedTables(ctx context.Context, slot string) (map[string]uint32, error)
	SaveCapturedTable(ctx context.Context, slot, table string, oid uint32) error
}

// slotWatchConfig is what a watcher watches.
type slotWatchConfig struct {
	url, slot, publication string
	tables                 []string
	uses                   map[string]cdc.TableUse
	interval               time.Duration
	reader                 *cdc.Reader
	metrics                *metrics.Metrics
	records                capturedRecords
	log                    zerolog.Logger
}

// streamCheck is how often run looks whether the reader started or
// stopped streaming, to read the slot again at once when it did.
const streamCheck = 100 * time.Millisecond

// run polls every interval, and as soon as the reader starts or stops
// streaming, until ctx ends.
func (w *watcher) run(ctx context.Context) {
	defer w.closeConn(ctx)
	tick := time.NewTicker(min(streamCheck, w.interval))
	defer tick.Stop()
	var last time.Time
	streaming := false
	for {
		if now := w.reader.Status().Streaming; now != streaming || time.Since(last) >= w.interval {
			streaming = now
			w.poll(ctx)
			last = time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Ready reports the configured tables whose rows are not captured now.
func (w *watcher) Ready() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.problems) == 0 {
		return nil
	}
	tables := make([]string, 0, len(w.problems))
	for t := range w.problems {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	msgs := make([]string, len(tables))
	for i, t := range tables {
		msgs[i] = w.problems[t]
	}
	return errors.New(strings.Join(msgs, "; "))
}

// replication is what the replication gauges show now.
func (w *watcher) replication() metrics.Replication {
	oldest := w.reader.OldestUnconfirmed()
	w.mu.Lock()
	defer w.mu.Unlock()
	return metrics.Replication{Read: w.viewOK, View: w.view, OldestUnconfirmed: oldest, TablesNotCaptured: len(w.problems)}
}

// slotView is the slot as last read; ok is false when the last read failed.
func (w *watcher) slotView() (v cdc.SlotView, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.view, w.viewOK
}

// poll reads the slot and the tables once and acts on what changed.
func (w *watcher) poll(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, watchTimeout)
	defer cancel()
	// Whether we streamed before the catalog is read: the session's start
	// had then put every configured table in the publication.
	streaming := w.reader.Status().Streaming
	err := w.read(ctx, streaming)
	// The connection is not kept between reads: a smart shutdown of the
	// database waits for every open session and refuses only new ones, so
	// a kept one would hold the shutdown up (docs/architecture.md, "Letting
	// go of a database that shuts down"). One connection per read, every
	// few seconds, costs the server little.
	w.closeConn(ctx)
	if err == nil {
		if w.readErr != "" {
			w.log.Info().Msg("reading the slot and the watched tables again")
			w.readErr = ""
		}
		return
	}
	w.mu.Lock()
	w.viewOK = false
	w.mu.Unlock()
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return
	}
	if msg := err.Error(); msg != w.readErr {
		// Once per distinct error: the database being away is reported
		// by the reader and by walhook_source_streaming.
		w.log.Warn().Err(err).Str("retry_in", w.interval.String()).Msg("reading the slot and the watched tables")
		w.readErr = msg
	}
}

func (w *watcher) read(ctx context.Context, streaming bool) error {
	conn, err := w.connect(ctx)
	if err != nil {
		return err
	}
	view, err := cdc.ReadSlotView(ctx, conn, w.slot)
	if err != nil {
		return err
	}
	oids := make([]uint32, 0, len(w.known))
	for _, oid := range w.known {
		oids = append(oids, oid)
	}
	tv, err := cdc.ReadTables(ctx, conn, w.publication, w.tables, oids)
	if err != nil {
		return err
	}
	w.mu.Lock()
	w.view, w.viewOK = view, true
	w.mu.Unlock()
	if !tv.PublicationExists {
		return nil // the reader creates it at its next session; nothing to compare with
	}
	if !w.loadRecords(ctx) {
		return nil // the tables are compared once walhook knows what it captured before
	}
	defer w.saveRecords(ctx)
	// Another instance holding the slot looks after the publication.
	act := streaming || !view.Active
	var republish []finding
	for _, t := range w.tables {
		known, seen := w.known[t]
		f := classify(t, known, seen, tv, streaming, act)
		f.earlier = w.fromLast[t]
		if f.kind != tableRenamed && f.kind != tableDropped && f.kind != tableMissing {
			delete(w.sighted, t)
		}
		switch f.kind {
		case tableRecreated, tableUnpublished:
			republish = append(republish, f)
		default:
			w.settle(ctx, conn, f)
		}
	}
	if len(republish) > 0 {
		w.republish(ctx, conn, republish)
	}
	return nil
}

// connect returns the watcher's connection, opening it if needed; it
// takes no lock for longer than a second or two (DESIGN.md invariant 7).
func (w *watcher) connect(ctx context.Context) (*pgx.Conn, error) {
	if w.conn != nil {
		return w.conn, nil
	}
	cfg, err := pgx.ParseConfig(w.url)
	if err != nil {
		return nil, fmt.Errorf("parsing the source database URL: %w", err)
	}
	cfg.RuntimeParams["lock_timeout"] = "2s"
	cfg.RuntimeParams["statement_timeout"] = "5s"
	if _, set := cfg.RuntimeParams["application_name"]; !set {
		cfg.RuntimeParams["application_name"] = "walhook watch"
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to the source database: %w", err)
	}
	w.conn = conn
	return conn, nil
}

func (w *watcher) closeConn(ctx context.Context) {
	if w.conn == nil {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = w.conn.Close(cctx)
	w.conn = nil
}

// tableKind is what the watcher finds about one configured table.
type tableKind int

const (
	tableOK          tableKind = iota // captured
	tableLeft                         // not captured, but another instance holds the slot and sees to it
	tableRecreated                    // re-created under its name and not in the publication
	tableUnpublished                  // taken out of the publication
	tableReadded                      // re-created and already back in the publication
	tableRenamed                      // the table captured has another name now
	tableDropped                      // the table captured is gone
	tableMissing                      // no table by that name, and none seen before
)

// finding is what classify says about a configured table.
type finding struct {
	table          string
	kind           tableKind
	oldOID, newOID uint32
	// oldName is what the table captured before (oldOID) is called now;
	// "" when it is gone.
	oldName string
	// earlier: oldOID is what an earlier run captured, so what changed
	// happened while no walhook ran (or before this one took over).
	earlier bool
}

// classify compares a configured table with the catalog: known is the oid
// captured for it (seen: one was), streaming whether this instance
// streamed before tv was read, act whether this instance looks after the
// publication (it streams, or no one holds the slot).
func classify(table string, known uint32, seen bool, tv cdc.TablesView, streaming, act bool) finding {
	now := tv.Configured[table]
	f := finding{table: table, oldOID: known, newOID: now}
	if seen {
		f.oldName = tv.Names[known]
	}
	switch {
	case now != 0 && tv.Published[now]:
		if seen && known != now && act {
			f.kind = tableReadded
		}
	case now != 0 && !act:
		f.kind = tableLeft
	case now != 0 && seen && known != now:
		f.kind = tableRecreated
	case now != 0 && (seen || streaming):
		// Our session put it in when it started; someone took it out.
		f.kind = tableUnpublished
	case now != 0:
		f.kind = tableLeft // before our first session: its start publishes it
	case seen && f.oldName != "":
		f.kind = tableRenamed
	case seen:
		f.kind = tableDropped
	default:
		f.kind = tableMissing
	}
	return f
}

// key identifies a finding, so that each is logged and counted once.
func (f finding) key() string {
	return fmt.Sprintf("%d:%d:%d:%s", f.kind, f.oldOID, f.newOID, f.oldName)
}

// settle records a finding that needs no change to the publication: logs
// and counts it when it is new, and keeps /readyz up to date.
func (w *watcher) settle(ctx context.Context, conn *pgx.Conn, f finding) {
	t := f.table
	switch f.kind {
	case tableLeft:
		return
	case tableOK:
		w.known[t] = f.newOID
		delete(w.fromLast, t)
		if _, was := w.reported[t]; was {
			delete(w.reported, t)
			w.setProblem(t, "")
			w.log.Info().Str("table", t).Uint32("oid", f.newOID).Msgf("table %s is captured again", t)
		}
		return
	case tableReadded:
		w.known[t] = f.newOID
		w.setProblem(t, "")
		delete(w.reported, t)
		w.gap(metrics.GapTableRecreated, f, fmt.Sprintf("table %s was dropped and re-created (oid %d, now %d)%s, which took it out of publication %s; it is back in it now (put back when a replication session started, or by another walhook). Rows written to the new table before that were not captured.%s",
			t, f.oldOID, f.newOID, f.when(), w.publication, backfillHint(t)), 0, "")
		return
	}
	if w.reported[t] == f.key() {
		return
	}
	// A table dropped or renamed just before it is created again under its
	// name (two statements, not one transaction) is not reported as gone
	// for a moment: a state is reported when two reads in a row find it.
	if w.sighted[t] != f.key() {
		w.sighted[t] = f.key()
		return
	}
	delete(w.sighted, t)
	w.reported[t] = f.key()
	var msg, reason string
	switch f.kind {
	case tableRenamed:
		reason = metrics.GapTableRenamed
		msg = fmt.Sprintf("table %s (oid %d) was renamed to %s"+f.when()+": its changes still reach walhook under the new name, but no event block reads %s, so they produce no events. Change table = %q to %q in the config's event blocks and restart walhook (or rename the table back), then send the rows changed meanwhile with: walhook backfill -c <config> --table %s",
			t, f.oldOID, f.oldName, f.oldName, t, f.oldName, f.oldName)
	case tableDropped:
		reason = metrics.GapTableDropped
		msg = fmt.Sprintf("table %s (oid %d) was dropped"+f.when()+": nothing is captured for it. If it is created again, walhook puts it back in publication %s and says what it missed; if it is gone for good, remove its event blocks from the config and restart walhook",
			t, f.oldOID, w.publication)
	case tableMissing:
		reason = metrics.GapTableMissing
		msg = fmt.Sprintf("table %s does not exist: nothing is captured for it. Create it, or remove its event blocks from the config and restart walhook", t)
	}
	w.setProblem(t, msg)
	w.gap(reason, f, msg, 0, "")
}

// republish puts the tables of fs back in the publication and reports the
// gap each left; a failure is reported once per table and tried again at
// the next poll.
func (w *watcher) republish(ctx context.Context, conn *pgx.Conn, fs []finding) {
	err := cdc.RepublishTables(ctx, conn, w.publication, w.tables, w.uses)
	var at cdc.LSN
	var after cdc.TablesView
	if err == nil {
		at, err = cdc.CurrentLSN(ctx, conn)
	}
	if err == nil {
		after, err = cdc.ReadTables(ctx, conn, w.publication, w.tables, nil)
	}
	if err != nil {
		for _, f := range fs {
			msg := fmt.Sprintf("%s; putting it back in publication %s failed (walhook tries again every %s): %v",
				whatHappened(f, w.publication), w.publication, w.interval, err)
			w.setProblem(f.table, msg)
			if w.reported[f.table] == f.key() {
				continue
			}
			w.reported[f.table] = f.key()
			w.gap(reason(f), f, msg, 0, "")
		}
		return
	}
	for _, f := range fs {
		counted := w.reported[f.table] == f.key() // its failure to come back was counted
		// What went in is the table by that name now.
		oid := after.Configured[f.table]
		if oid == 0 || !after.Published[oid] {
			continue // changed again meanwhile: the next poll looks
		}
		if oid != f.newOID && f.oldOID != 0 {
			f.kind = tableRecreated
		}
		f.newOID = oid
		w.known[f.table] = oid
		delete(w.reported, f.table)
		// /readyz turns ready once the gap is logged and counted.
		defer w.setProblem(f.table, "")
		msg := fmt.Sprintf("%s; walhook put it back at %s. Its rows written before that were not captured.", whatHappened(f, w.publication), at)
		held := ""
		if f.kind == tableRecreated {
			// The new table's rows then: written before it was published.
			if n, more, err := cdc.CountRows(ctx, conn, f.table, maxCountedRows); err == nil {
				held = strconv.FormatInt(n, 10)
				if more {
					held = "more than " + held
				}
				msg = fmt.Sprintf("%s; walhook put it back at %s. It held %s just after that: those written before it was back were not captured.", whatHappened(f, w.publication), at, rowsText(held))
			}
		}
		msg += backfillHint(f.table)
		if counted {
			w.log.Error().Str("table", f.table).Str("republished_at", at.String()).Msg(msg)
			continue
		}
		w.gap(reason(f), f, msg, at, held)
	}
}

// rowsText is "1 row" or "n rows".
func rowsText(n string) string {
	if n == "1" {
		return "1 row"
	}
	return n + " rows"
}

// maxCountedRows bounds the count of a re-created table's rows.
const maxCountedRows = 1_000_000

// whatHappened describes a table that left the publication.
func whatHappened(f finding, publication string) string {
	if f.kind == tableUnpublished {
		return fmt.Sprintf("table %s (oid %d) was removed from publication %s", f.table, f.newOID, publication)
	}
	how := "dropped and re-created"
	if f.oldName != "" {
		how = "renamed to " + f.oldName + " and a new table created under its name"
	}
	return fmt.Sprintf("table %s was %s (oid %d, now %d)%s, which left the new table out of publication %s", f.table, how, f.oldOID, f.newOID, f.when(), publication)
}

// when says, for a change found against an earlier run's record, that it
// happened while no walhook ran.
func (f finding) when() string {
	if f.earlier {
		return " while walhook was not running (found when it started)"
	}
	return ""
}

func reason(f finding) string {
	if f.kind == tableUnpublished {
		return metrics.GapTableUnpublished
	}
	return metrics.GapTableRecreated
}

// backfillHint says how to send a table's rows again.
func backfillHint(table string) string {
	return " To send its current rows as read events (to the event blocks whose on lists \"read\"), run: walhook backfill -c <config> --table " + table
}

// gap logs a capture gap at error level and counts it; at and rows (the
// new table's row count just after at) are left out when unknown (0, "").
func (w *watcher) gap(reason string, f finding, msg string, at cdc.LSN, rows string) {
	if w.metrics != nil {
		w.metrics.CaptureGap(reason)
	}
	e := w.log.Error().Str("table", f.table).Str("reason", reason).Str("publication", w.publication)
	if f.oldOID != 0 {
		e = e.Uint32("old_oid", f.oldOID)
	}
	if f.newOID != 0 {
		e = e.Uint32("oid", f.newOID)
	}
	if f.oldName != "" {
		e = e.Str("old_table_now", f.oldName)
	}
	if at != 0 {
		e = e.Str("republished_at", at.String())
	}
	if rows != "" {
		e = e.Str("rows_when_republished", rows)
	}
	e.Msg(msg)
}

// setProblem records why table is not captured ("": it is).
func (w *watcher) setProblem(table, msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if msg == "" {
		delete(w.problems, table)
	} else {
		w.problems[table] = msg
	}
}

// loadRecords fills known, once, with the oids recorded by earlier runs;
// it reports whether the tables may be compared (false while the state
// store cannot be read: comparing without the record would adopt a table
// re-created meanwhile as if it were the one captured).
func (w *watcher) loadRecords(ctx context.Context) bool {
	if w.loaded || w.records == nil {
		return true
	}
	recorded, err := w.records.CapturedTables(ctx, w.slot)
	if err != nil {
		if msg := err.Error(); msg != w.recErr {
			w.log.Warn().Err(err).Str("retry_in", w.interval.String()).Msg("reading which tables walhook captured before; the tables are checked once it can")
			w.recErr = msg
		}
		return false
	}
	w.recErr = ""
	for _, t := range w.tables {
		if oid, ok := recorded[t]; ok {
			w.known[t], w.recorded[t], w.fromLast[t] = oid, oid, true
		}
	}
	w.loaded = true
	return true
}

// saveRecords records the oids known now that the store does not hold
// yet; a failure is tried again at the next poll.
func (w *watcher) saveRecords(ctx context.Context) {
	if w.records == nil {
		return
	}
	for _, t := range w.tables {
		oid, ok := w.known[t]
		if !ok || w.recorded[t] == oid {
			continue
		}
		if err := w.records.SaveCapturedTable(ctx, w.slot, t, oid); err != nil {
			w.log.Warn().Err(err).Str("table", t).Msg("recording the captured table; tried again at the next read")
			return
		}
		w.recorded[t] = oid
		delete(w.fromLast, t)
	}
}
