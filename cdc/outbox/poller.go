package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/walhook/walhook/cdc"
)

// Row is one claimed outbox row, as the table holds it: a column may be
// NULL or hold a value no event can be made of, which the reader of the
// rows (internal/outboxevents) turns into a failed evaluation.
type Row struct {
	ID int64
	// EventType is nil when the column is NULL.
	EventType *string
	Key       string // empty when NULL
	Tenant    string // empty when NULL
	// Payload is the payload column's text (json, jsonb or text); nil when
	// NULL. It is not necessarily JSON.
	Payload json.RawMessage
	// CreatedAt is zero when the column is NULL.
	CreatedAt time.Time
	// Origin names the row's table in its cluster and database, for the
	// row's event ids.
	Origin Origin
	// Change is the captured row change of a ChangeType row; nil otherwise
	// or when it could not be decoded (then Err says why).
	Change *cdc.Change
	Err    error
}

// Type is the row's event_type, empty when NULL.
func (r *Row) Type() string {
	if r.EventType == nil {
		return ""
	}
	return *r.EventType
}

// Sink consumes claimed batches, one at a time and in claim order. It
// calls settled (once, from any goroutine, possibly before Apply returns)
// when every row of the batch is delivered or durably stored; the Poller
// then deletes the rows. An error stops the Poller and the batch is rolled
// back.
type Sink interface {
	Apply(ctx context.Context, rows []Row, settled func()) error
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(ctx context.Context, rows []Row, settled func()) error

// Apply calls f.
func (f SinkFunc) Apply(ctx context.Context, rows []Row, settled func()) error {
	return f(ctx, rows, settled)
}

// Config configures a Poller.
type Config struct {
	URL   string // libpq URL or key=value DSN of the database holding the table
	Table string // "schema.table"
	// BatchSize is the most rows claimed at once; default 500.
	BatchSize int
	// PollInterval is how often the table is read when no notification
	// arrives; default 1s.
	PollInterval time.Duration
	// Batches is how many claimed batches may wait to settle at once, each
	// holding a connection and an open transaction; default 4.
	Batches int
	// MaxBackoff caps the wait between attempts after errors; default 30s.
	MaxBackoff time.Duration
	Logger     zerolog.Logger
}

// Status is a snapshot of a Poller's state, for metrics and readiness.
type Status struct {
	// Connected reports that the last claim reached the database.
	Connected bool
	// Listening reports a connection listening for notifications.
	Listening bool
	// Claimed and Deleted count rows since start.
	Claimed, Deleted int64
	LastError        string
}

// Poller claims outbox rows and deletes them once their batch settles.
type Poller struct {
	cfg   Config
	log   zerolog.Logger
	table string // quoted
	pool  *pgxpool.Pool

	wake  chan struct{}
	abort chan struct{} // closed by Drain when its deadline passes
	// letGo is closed, and replaced, when the database shuts down (see
	// shutdown.go); probeEvery is how often that is checked.
	letGoMu    sync.Mutex
	letGo      chan struct{}
	probeEvery time.Duration
	batches    sync.WaitGroup
	changes    *changeDecoder

	mu      sync.Mutex
	status  Status
	claimed atomic.Int64
	deleted atomic.Int64

	claimSQL, deleteSQL string
}

// NewPoller returns a Poller; it connects in Run.
func NewPoller(cfg Config) (*Poller, error) {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.Batches <= 0 {
		cfg.Batches = 4
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	t, err := ident(cfg.Table)
	if err != nil {
		return nil, err
	}
	pcfg, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("parsing the outbox database URL: %w", err)
	}
	pcfg.MaxConns = int32(cfg.Batches + 1)
	if pcfg.ConnConfig.RuntimeParams["application_name"] == "" {
		pcfg.ConnConfig.RuntimeParams["application_name"] = "walhook"
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), pcfg)
	if err != nil {
		return nil, fmt.Errorf("configuring the outbox connection pool: %w", err)
	}
	return &Poller{
		cfg: cfg, log: cfg.Logger, table: t, pool: pool,
		wake: make(chan struct{}, 1), abort: make(chan struct{}), changes: newChangeDecoder(),
		letGo: make(chan struct{}), probeEvery: probeInterval,
		// The cluster's system identifier and the database's oid are read
		// with every claim (one row each, no round trip): a URL that
		// reaches another server gives its rows ids of their own.
		claimSQL: `SELECT o.id, o.event_type::text, o.key::text, o.tenant::text, o.payload::text, o.created_at,
			o.tableoid, (` + originSQL + `)
			FROM ` + t + ` o ORDER BY o.id LIMIT $1 FOR UPDATE OF o SKIP LOCKED`,
		deleteSQL: `DELETE FROM ` + t + ` WHERE id = ANY($1)`,
	}, nil
}

// Status returns a snapshot of the poller's state.
func (p *Poller) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.status
	s.Claimed, s.Deleted = p.claimed.Load(), p.deleted.Load()
	return s
}

func (p *Poller) setStatus(f func(*Status)) {
	p.mu.Lock()
	f(&p.status)
	p.mu.Unlock()
}

// Wake makes the poller read the table now (as a notification does).
func (p *Poller) Wake() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Run claims batches and hands them to sink until ctx ends or sink fails.
// Batches still waiting to settle when it returns are finished by Drain.
func (p *Poller) Run(ctx context.Context, sink Sink) error {
	lctx, stopListening := context.WithCancel(ctx)
	var listener sync.WaitGroup
	listener.Add(2)
	go func() { defer listener.Done(); p.listen(lctx) }()
	go func() { defer listener.Done(); p.watchShutdown(lctx) }()
	defer func() { stopListening(); listener.Wait() }()

	slots := make(chan struct{}, p.cfg.Batches)
	backoff := time.Duration(0)
	poll := time.NewTimer(p.cfg.PollInterval)
	defer poll.Stop()
	wait := func(d time.Duration, wakeable bool) bool {
		if !poll.Stop() {
			select {
			case <-poll.C:
			default:
			}
		}
		poll.Reset(d)
		wake := p.wake
		if !wakeable {
			wake = nil
		}
		select {
		case <-ctx.Done():
			return false
		case <-wake:
		case <-poll.C:
		}
		return true
	}
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		b, err := p.claim(ctx)
		if err != nil {
			<-slots
			if ctx.Err() != nil {
				return nil
			}
			backoff = min(max(2*backoff, 250*time.Millisecond), p.cfg.MaxBackoff)
			p.setStatus(func(s *Status) { s.Connected, s.LastError = false, err.Error() })
			p.log.Warn().Err(err).Stringer("retry_in", backoff).Msg("claiming outbox rows")
			if !wait(backoff, false) {
				return nil
			}
			continue
		}
		backoff = 0
		p.setStatus(func(s *Status) { s.Connected, s.LastError = true, "" })
		if len(b.rows) == 0 {
			b.rollback()
			<-slots
			if !wait(p.cfg.PollInterval, true) {
				return nil
			}
			continue
		}
		p.claimed.Add(int64(len(b.rows)))
		p.batches.Add(1)
		letGo := p.letGoSignal()
		go func() {
			defer func() { <-slots }()
			p.finish(b, letGo)
		}()
		if err := sink.Apply(ctx, b.rows, b.settle); err != nil {
			close(b.failed)
			return fmt.Errorf("applying %d outbox rows: %w", len(b.rows), err)
		}
		if len(b.rows) < p.cfg.BatchSize && !wait(p.cfg.PollInterval, true) {
			return nil
		}
	}
}

// Drain waits for the batches handed to the Sink to settle and be deleted;
// when ctx ends first, it rolls the rest back (their rows will be claimed
// again). It closes the poller's connections. Call it after Run returns.
func (p *Poller) Drain(ctx context.Context) error {
	done := make(chan struct{})
	go func() { p.batches.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		close(p.abort)
		<-done
		err = fmt.Errorf("outbox batches did not settle in time; their rows will be delivered again: %w", ctx.Err())
	}
	p.pool.Close()
	return err
}

// batch is one claimed batch: its rows stay locked by tx until it ends.
type batch struct {
	conn    *pgxpool.Conn
	tx      pgx.Tx
	rows    []Row
	settled chan struct{}
	once    sync.Once
	failed  chan struct{} // closed when the Sink failed on the batch
}

func (b *batch) settle() { b.once.Do(func() { close(b.settled) }) }

func (b *batch) rollback() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = b.tx.Rollback(ctx)
	b.conn.Release()
}

// claim locks up to a batch of rows in a new transaction.
func (p *Poller) claim(ctx context.Context) (*batch, error) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := p.pool.Acquire(cctx)
	if err != nil {
		return nil, fmt.Errorf("connecting to the outbox database: %w", err)
	}
	tx, err := conn.Begin(cctx)
	if err != nil {
		conn.Release()
		return nil, fmt.Errorf("beginning an outbox claim: %w", err)
	}
	b := &batch{conn: conn, tx: tx, settled: make(chan struct{}), failed: make(chan struct{})}
	rows, err := tx.Query(cctx, p.claimSQL, p.cfg.BatchSize)
	if err == nil {
		for rows.Next() {
			var r Row
			var key, tenant, payload *string
			var created *time.Time
			var origin string
			if err = rows.Scan(&r.ID, &r.EventType, &key, &tenant, &payload, &created, &r.Origin.Table, &origin); err != nil {
				break
			}
			if err = r.Origin.parse(origin); err != nil {
				break
			}
			if key != nil {
				r.Key = *key
			}
			if tenant != nil {
				r.Tenant = *tenant
			}
			if payload != nil {
				r.Payload = json.RawMessage(*payload)
			}
			if created != nil {
				r.CreatedAt = *created
			}
			b.rows = append(b.rows, r)
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	}
	if err != nil {
		b.rollback()
		return nil, fmt.Errorf("claiming outbox rows from %s: %w", p.cfg.Table, err)
	}
	for i := range b.rows {
		r := &b.rows[i]
		if r.Type() != ChangeType {
			continue
		}
		if r.Change, r.Err = p.changes.decode(cctx, p.pool, r); r.Err != nil && cctx.Err() != nil {
			b.rollback()
			return nil, r.Err
		}
	}
	return b, nil
}

// finish waits for the batch to settle, then deletes its rows and commits;
// or rolls it back if the Sink failed on it, Drain gave up, or the
// database shuts down (letGo).
func (p *Poller) finish(b *batch, letGo <-chan struct{}) {
	defer p.batches.Done()
	select {
	case <-b.settled:
	case <-b.failed:
		b.rollback()
		return
	case <-p.abort:
		b.rollback()
		return
	case <-letGo:
		b.rollback()
		p.log.Warn().Int("rows", len(b.rows)).Int64("first_id", b.rows[0].ID).
			Msg("outbox batch rolled back unsettled so that the database can shut down; its rows will be delivered again, with the same ids")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ids := make([]int64, len(b.rows))
	for i := range b.rows {
		ids[i] = b.rows[i].ID
	}
	_, err := b.tx.Exec(ctx, p.deleteSQL, ids)
	if err == nil {
		err = b.tx.Commit(ctx)
	}
	if err != nil {
		_ = b.tx.Rollback(ctx)
		b.conn.Release()
		p.log.Warn().Err(err).Int("rows", len(ids)).Int64("first_id", ids[0]).
			Msg("deleting delivered outbox rows failed; they will be delivered again, with the same ids")
		return
	}
	b.conn.Release()
	p.deleted.Add(int64(len(ids)))
}

// listen keeps a connection listening on Channel and wakes the poller on
// each notification for its table, reconnecting with backoff.
func (p *Poller) listen(ctx context.Context) {
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		err := p.listenOnce(ctx)
		p.setStatus(func(s *Status) { s.Listening = false })
		if ctx.Err() != nil {
			return
		}
		backoff = min(max(2*backoff, 250*time.Millisecond), p.cfg.MaxBackoff)
		p.log.Warn().Err(err).Stringer("retry_in", backoff).Msg("listening for outbox notifications; polling meanwhile")
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
	}
}

func (p *Poller) listenOnce(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	conn, err := pgx.ConnectConfig(cctx, p.pool.Config().ConnConfig.Copy())
	if err == nil {
		_, err = conn.Exec(cctx, "LISTEN "+Channel)
	}
	cancel()
	if err != nil {
		if conn != nil {
			_ = conn.Close(context.Background())
		}
		return fmt.Errorf("listening on %s: %w", Channel, err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	p.setStatus(func(s *Status) { s.Listening = true })
	p.Wake() // rows may have arrived while nobody listened
	// The session ends when the database shuts down (shutdown.go).
	wctx, cancelWait := context.WithCancel(ctx)
	letGo := p.letGoSignal()
	var watcher sync.WaitGroup
	watcher.Add(1)
	go func() {
		defer watcher.Done()
		select {
		case <-letGo:
			cancelWait()
		case <-wctx.Done():
		}
	}()
	defer func() { cancelWait(); watcher.Wait() }()
	for {
		n, err := conn.WaitForNotification(wctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if wctx.Err() != nil {
				return errors.New("the outbox database is shutting down")
			}
			return fmt.Errorf("waiting for notifications: %w", err)
		}
		if n.Payload == "" || n.Payload == p.cfg.Table {
			p.Wake()
		}
	}
}
