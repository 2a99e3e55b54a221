package backfill

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/rs/zerolog"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/store"
)

// Defaults of a Runner.
const (
	DefaultChunkSize = 2000
	// maxChunkSize bounds the rows of one chunk held in memory.
	maxChunkSize = 50000
	// maxUnsettled is how many chunks may be emitted and not yet settled
	// when the next one's high watermark is written. One: the next chunk
	// is read while the previous one is delivered, and its rows join the
	// stream as the previous chunk finishes (the runner writes the high
	// watermark that long ahead of the previous chunk's expected end, see
	// beforeHigh), so live events queue behind about one chunk of
	// backfilled rows.
	maxUnsettled = 1
	// defaultHighTimeout is how long a runner waits for its high watermark
	// to come through the stream before it reads the chunk again.
	defaultHighTimeout = 2 * time.Minute
	idlePoll           = 2 * time.Second
	// progressEvery is how often a running backfill writes its progress
	// and reads its status: a crash re-sends at most about that much.
	progressEvery = 250 * time.Millisecond
)

// RunnerOptions configure a Runner.
type RunnerOptions struct {
	// URL is the source database's.
	URL   string
	Store *store.Store
	Stage *Stage
	// Streaming reports whether this instance holds the slot: only then
	// does it run backfills (the watermarks must come back to its stage).
	Streaming func() bool
	// StatementTimeout and LockTimeout bound every read; defaults 5s, 1s.
	StatementTimeout time.Duration
	LockTimeout      time.Duration
	// HighTimeout overrides how long to wait for a high watermark.
	HighTimeout time.Duration
	Logger      zerolog.Logger
}

// Runner executes submitted backfills one at a time, oldest first, inside
// the relay that owns the slot. It reads each table in primary key
// chunks between watermarks (see doc.go), records the last key of every
// chunk once its events are settled, and resumes from it after a restart.
type Runner struct {
	opts RunnerOptions
	log  zerolog.Logger
	wake chan struct{}

	mu     sync.Mutex
	active *Progress // the backfill running now; nil when idle

	// Counters since start, for metrics.
	rowsRead, rowsEmitted, chunks, chunkRetries atomic.Int64
}

// Progress is a running backfill's live state, for metrics and status.
type Progress struct {
	ID        string
	Table     string
	RowsTotal int64 // -1 when not counted yet
	// RowsRead counts rows read, including chunks not settled yet.
	RowsRead int64
	RowsSent int64
	Started  time.Time
}

// NewRunner returns a Runner; Run starts it.
func NewRunner(opts RunnerOptions) *Runner {
	if opts.HighTimeout <= 0 {
		opts.HighTimeout = defaultHighTimeout
	}
	return &Runner{opts: opts, log: opts.Logger.With().Str("component", "backfill").Logger(), wake: make(chan struct{}, 1)}
}

// Wake makes an idle runner look for work now (after a submission or a
// resume through the API).
func (r *Runner) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Active returns the running backfill's progress, if any.
func (r *Runner) Active() (Progress, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.active == nil {
		return Progress{}, false
	}
	return *r.active, true
}

// Run executes backfills until ctx is done. A backfill interrupted by a
// transient error waits to be resumed (with a growing backoff, its reason
// in last_error) while the backfills behind it run: one failing backfill
// never holds up the queue.
func (r *Runner) Run(ctx context.Context) {
	waiting := map[string]*retrying{}
	for ctx.Err() == nil {
		if r.opts.Streaming == nil || r.opts.Streaming() {
			now := time.Now()
			var skip []string
			for id, w := range waiting {
				switch {
				case w.at.After(now):
					skip = append(skip, id)
				case now.Sub(w.at) > forgetRetry: // finished, paused or cancelled meanwhile
					delete(waiting, id)
				}
			}
			b, err := r.opts.Store.NextBackfill(ctx, skip...)
			if err == nil {
				if err := r.run(ctx, b); err != nil && ctx.Err() == nil {
					r.retryLater(ctx, b, err, waiting)
				} else {
					delete(waiting, b.ID)
				}
				continue
			}
			if !errors.Is(err, store.ErrNotFound) && ctx.Err() == nil {
				r.log.Warn().Err(err).Msg("looking for backfills to run")
			}
		}
		select {
		case <-ctx.Done():
		case <-r.wake:
		case <-time.After(idlePoll):
		}
	}
}

// Retrying a backfill after a transient error.
const (
	firstRetry = time.Second
	maxRetry   = time.Minute
	// maxTimeouts is how many reads in a row may exceed statement_timeout
	// before the backfill fails: one that always does would retry forever.
	maxTimeouts = 3
	// forgetRetry is how long after its retry time a backfill that was
	// not picked up again is forgotten.
	forgetRetry = 10 * time.Minute
)

// retrying is a backfill waiting to be resumed after a transient error.
type retrying struct {
	at       time.Time
	wait     time.Duration
	timeouts int // reads in a row that exceeded statement_timeout
}

// retryLater records a transient error of b: b waits (its reason shown
// in last_error) and the next backfill may run meanwhile; after
// maxTimeouts timeouts in a row it fails instead.
func (r *Runner) retryLater(ctx context.Context, b store.Backfill, err error, waiting map[string]*retrying) {
	w := waiting[b.ID]
	if w == nil {
		w = &retrying{wait: firstRetry / 2}
		waiting[b.ID] = w
	}
	if timedOut(err) {
		w.timeouts++
	} else {
		w.timeouts = 0
	}
	if w.timeouts >= maxTimeouts {
		delete(waiting, b.ID)
		err = fmt.Errorf("%d reads in a row exceeded the statement timeout (%s); make the where clause cheaper, or the table's key index usable: %w",
			w.timeouts, r.statementTimeout(), err)
		r.log.Error().Err(err).Str("backfill_id", b.ID).Msg("backfill failed")
		if _, serr := r.opts.Store.SetBackfillStatus(ctx, b.ID, store.BackfillFailed, err.Error(), store.BackfillRunning); serr != nil && !errors.Is(serr, store.ErrBackfillState) {
			r.log.Warn().Err(serr).Str("backfill_id", b.ID).Msg("recording a failed backfill")
		}
		return
	}
	w.wait = min(2*w.wait, maxRetry)
	w.at = time.Now().Add(w.wait)
	reason := fmt.Sprintf("interrupted, resuming in %s from the last settled chunk: %v", w.wait, err)
	r.log.Warn().Err(err).Str("backfill_id", b.ID).Str("retry_in", w.wait.String()).Msg("backfill interrupted; the next one may run meanwhile")
	if _, serr := r.opts.Store.SetBackfillStatus(ctx, b.ID, store.BackfillRunning, reason, store.BackfillRunning); serr != nil && !errors.Is(serr, store.ErrBackfillState) {
		r.log.Warn().Err(serr).Str("backfill_id", b.ID).Msg("recording why a backfill waits")
	}
}

func (r *Runner) statementTimeout() time.Duration {
	if r.opts.StatementTimeout > 0 {
		return r.opts.StatementTimeout
	}
	return 5 * time.Second
}

func (r *Runner) sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// permanent reports errors a retry cannot fix: the table is gone or has
// no primary key, the where clause is refused, or reading fails for a
// reason that stays (SQLSTATE classes 42 syntax and privileges, 22 data,
// 21 cardinality, 0A not supported, 2F/38/39/P0 a function the clause
// calls raised an error, and 25006 a write in the read-only transaction).
// Connection losses, shutdowns, lock and statement timeouts, conflicts
// and resource errors are transient.
func permanent(err error) bool {
	if errors.Is(err, cdc.ErrNoTable) || errors.Is(err, cdc.ErrNoPrimaryKey) ||
		errors.Is(err, cdc.ErrCondition) || errors.Is(err, cdc.ErrUnsafeCondition) {
		return true
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || len(pgErr.Code) != 5 {
		return false
	}
	switch pgErr.Code[:2] {
	case "42", "22", "21", "0A", "2F", "38", "39", "P0":
		return true
	}
	return pgErr.Code == "25006"
}

// timedOut reports a read cancelled by statement_timeout.
func timedOut(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "57014"
}

// unsettled is a chunk emitted and not yet settled.
type unsettled struct {
	end      cdc.LSN
	settled  *settleWaiter // closed once end is settled
	lastKey  []string
	done     int64
	sent     int64
	finished bool // the last chunk
	emitted  time.Time
	rows     int // rows emitted
}

// run executes one backfill until it completes, is paused or cancelled,
// or fails. A returned error is transient: the backfill stays running and
// is resumed from its last settled chunk.
func (r *Runner) run(ctx context.Context, b store.Backfill) (err error) {
	log := r.log.With().Str("backfill_id", b.ID).Str("table", b.Table).Logger()
	tr, err := cdc.OpenTableReader(ctx, r.opts.URL, b.Table, cdc.TableReadOptions{
		Where: b.Where, StatementTimeout: r.opts.StatementTimeout, LockTimeout: r.opts.LockTimeout,
	})
	if err != nil {
		return r.fail(ctx, b, err)
	}
	defer tr.Close(ctx)
	if b.RowsTotal == nil {
		n, exact, err := tr.Count(ctx)
		if err != nil {
			return r.fail(ctx, b, err)
		}
		if err := r.opts.Store.SetBackfillTotal(ctx, b.ID, n, exact); err != nil {
			return err
		}
		b.RowsTotal, b.TotalExact = &n, exact
	}
	r.opts.Stage.setTarget(b.ID, Target{IDSeed: b.IDSeed, Event: b.Event, EndpointID: b.EndpointID}, true)
	defer r.opts.Stage.setTarget(b.ID, Target{}, false)
	prog := &Progress{ID: b.ID, Table: b.Table, RowsTotal: *b.RowsTotal, RowsRead: b.RowsDone, RowsSent: b.RowsSent, Started: time.Now()}
	r.mu.Lock()
	r.active = prog
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.active = nil
		r.mu.Unlock()
	}()
	log.Info().Int64("rows_total", *b.RowsTotal).Int64("rows_done", b.RowsDone).Strs("after", b.LastKey).Msg("backfill running")

	sizer := newChunkSizer(b.ChunkSize, b.Rate)
	var (
		after   = b.LastKey
		done    = b.RowsDone
		sent    = b.RowsSent
		pending []unsettled
		bucket  *tokenBucket // caps the rows read over any window; nil without a rate
	)
	if b.Rate > 0 {
		bucket = newTokenBucket(b.Rate, rateBurst(b.Rate), time.Now())
	}
	// record notes the chunks settled so far (waiting until at most keep
	// are not), writes the newest one's progress to the store when flush is
	// set or progressEvery has passed, and returns the status the API left
	// (read at most every progressEvery, or at each write).
	var (
		toWrite   *unsettled // the newest settled chunk not yet written
		wroteAt   time.Time
		checkedAt time.Time
		status    = store.BackfillRunning
	)
	record := func(keep int, flush bool) (store.BackfillStatus, error) {
		for len(pending) > 0 {
			p := pending[0]
			if !p.settled.settled() {
				if len(pending) <= keep {
					break
				}
				select {
				case <-ctx.Done():
					return "", ctx.Err()
				case <-p.settled.done:
				}
			}
			sizer.settled(p.rows, p.settled.at.Sub(p.emitted))
			toWrite = &p
			pending = pending[1:]
		}
		now := time.Now()
		if toWrite == nil || !(flush || toWrite.finished || now.Sub(wroteAt) >= progressEvery) {
			if now.Sub(checkedAt) < progressEvery {
				return status, nil
			}
			st, err := r.opts.Store.BackfillStatusOf(ctx, b.ID)
			checkedAt, status = now, st
			return st, err
		}
		last := *toWrite
		st, err := r.opts.Store.RecordBackfillChunk(ctx, b.ID, last.lastKey, last.done, last.sent)
		if err != nil {
			return "", err
		}
		toWrite, wroteAt, checkedAt, status = nil, now, now, st
		if !last.finished || st != store.BackfillRunning {
			return st, nil
		}
		if _, err := r.opts.Store.SetBackfillStatus(ctx, b.ID, store.BackfillCompleted, "", store.BackfillRunning); err != nil {
			return "", err
		}
		log.Info().Int64("rows_done", last.done).Int64("rows_sent", last.sent).Stringer("took", time.Since(prog.Started)).Msg("backfill completed")
		status = store.BackfillCompleted
		return status, nil
	}

	// lead is how long a chunk's high watermark takes to bring its rows to
	// the dispatcher (see beforeHigh), smoothed.
	var lead time.Duration
	for {
		keep := len(pending)
		last := keep > 0 && pending[keep-1].finished
		if last {
			keep = 0
		}
		st, err := record(keep, last)
		if err != nil {
			return err
		}
		if st != store.BackfillRunning {
			if st == store.BackfillPaused || st == store.BackfillCancelled {
				// Chunks already emitted go out; record them before stopping.
				if _, err := record(0, true); err != nil {
					return err
				}
				log.Info().Str("status", string(st)).Int64("rows_done", done).Msg("backfill stopped")
			}
			return nil
		}
		size := sizer.size
		if bucket != nil {
			if wait := bucket.take(size, time.Now()); wait > 0 {
				r.sleep(ctx, wait)
				if ctx.Err() != nil {
					return ctx.Err()
				}
			}
		}
		// Before the chunk's high watermark, make room: wait for the
		// chunks before the newest to settle, and for the newest until
		// about lead before it should be (so its successor's rows arrive
		// as it finishes, not a watermark's round trip later); record what
		// settled, and stop if the API paused or cancelled meanwhile.
		beforeHigh := func() (bool, error) {
			if _, err := record(maxUnsettled, false); err != nil {
				return false, err
			}
			if len(pending) > 0 {
				// Until a chunk was timed, wait for it to settle.
				p, timeout := pending[0], (<-chan time.Time)(nil)
				if took, ok := sizer.expected(p.rows); ok {
					timer := time.NewTimer(time.Until(p.emitted.Add(took - lead)))
					defer timer.Stop()
					timeout = timer.C
				}
				select {
				case <-ctx.Done():
					return false, ctx.Err()
				case <-p.settled.done:
				case <-timeout:
				}
			}
			st, err := record(len(pending), false)
			return err == nil && st == store.BackfillRunning, err
		}
		chunkStart := time.Now()
		res, err := r.chunk(ctx, tr, b, after, size, beforeHigh)
		if err != nil {
			if permanent(err) {
				return r.fail(ctx, b, err)
			}
			return err
		}
		r.chunks.Add(1)
		if e := log.Debug(); e.Enabled() {
			e.Int("size", size).Int("read", res.read).Int("emitted", res.emitted).Bool("retry", res.retry).
				Dur("took", time.Since(chunkStart)).Stringer("low", res.phases[0]).Stringer("read_chunk", res.phases[1]).
				Dur("wait_previous", res.phases[2]).Stringer("high", res.phases[3]).Stringer("stream", res.phases[4]).Msg("chunk")
		}
		if res.stopped {
			continue // the status check at the top says why
		}
		if res.retry {
			r.chunkRetries.Add(1)
			log.Debug().Strs("after", after).Msg("the stream changed the chunk's table in a way not tied to one key; reading the chunk again")
			continue
		}
		done += int64(res.read)
		sent += int64(res.emitted)
		r.rowsRead.Add(int64(res.read))
		r.rowsEmitted.Add(int64(res.emitted))
		if res.last != nil {
			after = res.last
		}
		pending = append(pending, unsettled{end: res.end, settled: r.opts.Stage.watch(res.end), lastKey: after, done: done,
			sent: sent, finished: res.read < size, emitted: time.Now(), rows: res.emitted})
		lead = smooth(lead, res.phases[3]+res.phases[4])
		r.mu.Lock()
		prog.RowsRead, prog.RowsSent = done, sent
		r.mu.Unlock()
	}
}

// chunkResult is one chunk's outcome.
type chunkResult struct {
	read, emitted int
	last          []string
	end           cdc.LSN // the high watermark's transaction end
	retry         bool
	stopped       bool // beforeHigh said to stop: nothing was emitted
	// phases times the chunk's steps, for the debug log: low watermark,
	// read, waiting for the previous chunk, high watermark, stream.
	phases [5]time.Duration
}

// chunk reads one chunk between a low and a high watermark and waits for
// the stage to have emitted its rows at the high watermark. beforeHigh
// runs between the read and the high watermark; when it says not to go
// on, the chunk is abandoned unsent.
func (r *Runner) chunk(ctx context.Context, tr *cdc.TableReader, b store.Backfill, after []string, size int, beforeHigh func() (bool, error)) (chunkResult, error) {
	var tok [12]byte
	_, _ = rand.Read(tok[:])
	token := hex.EncodeToString(tok[:])
	t := tr.Table()
	outcome := r.opts.Stage.openWindow(&window{token: token, schema: t.Schema, table: t.Name, key: t.Key})
	abandon := func(err error) (chunkResult, error) {
		r.opts.Stage.abandon(token)
		return chunkResult{}, err
	}
	var phases [5]time.Duration
	mark := time.Now()
	lap := func(i int) {
		now := time.Now()
		phases[i], mark = now.Sub(mark), now
	}
	if err := tr.WriteMessage(ctx, MessagePrefix, "low:"+token); err != nil {
		return abandon(err)
	}
	lap(0)
	chunk, err := tr.Chunk(ctx, after, size)
	lap(1)
	if err != nil {
		return abandon(err)
	}
	rows, last := chunk.Rows, chunk.Last
	for i := range rows {
		rows[i].Backfill = b.ID
	}
	var snap snapshot
	if chunk.Snapshot != "" {
		if snap, err = parseSnapshot(chunk.Snapshot); err != nil {
			return abandon(err)
		}
	}
	if err := r.opts.Stage.setRows(token, rows, snap); err != nil {
		return abandon(err)
	}
	if goOn, err := beforeHigh(); err != nil || !goOn {
		_, err := abandon(err)
		return chunkResult{stopped: err == nil}, err
	}
	lap(2)
	if err := tr.WriteMessage(ctx, MessagePrefix, "high:"+token); err != nil {
		return abandon(err)
	}
	lap(3)
	timer := time.NewTimer(r.opts.HighTimeout)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return abandon(ctx.Err())
	case <-timer.C:
		return abandon(fmt.Errorf("the high watermark of a chunk of %s did not come through the stream within %s", b.Table, r.opts.HighTimeout))
	case c := <-outcome:
		if c.missing {
			return chunkResult{}, fmt.Errorf("backfill chunk %s reached its high watermark without its rows", token)
		}
		lap(4)
		return chunkResult{read: len(rows), emitted: c.emitted, last: last, end: c.endLSN, retry: c.retry, phases: phases}, nil
	}
}

// fail marks the backfill failed when err is permanent, and returns err
// otherwise.
func (r *Runner) fail(ctx context.Context, b store.Backfill, err error) error {
	if !permanent(err) {
		return err
	}
	r.log.Error().Err(err).Str("backfill_id", b.ID).Msg("backfill failed")
	if _, serr := r.opts.Store.SetBackfillStatus(ctx, b.ID, store.BackfillFailed, err.Error(), store.BackfillRunning); serr != nil && !errors.Is(serr, store.ErrBackfillState) {
		return serr
	}
	return nil
}

// smooth folds sample into an exponentially weighted average (a quarter
// weight for the new sample); the first sample is taken as it is.
func smooth(avg, sample time.Duration) time.Duration {
	if avg == 0 {
		return sample
	}
	return avg + (sample-avg)/4
}
