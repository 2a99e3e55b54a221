package outboxevents

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/cdc/outbox"
)

// Consumed deletes outbox rows read through the slot once their
// transaction is settled, before the settled position is confirmed to the
// slot (delete_consumed). Deleting first is what makes it safe: a crash
// between the delete and the confirmation replays the transaction from the
// WAL, which still holds the inserted rows, so nothing is lost and no
// consumed row is left behind.
type Consumed struct {
	pool  *pgxpool.Pool
	table string
	ack   func(cdc.LSN)
	log   zerolog.Logger
	wake  chan struct{}
	flush sync.Mutex // one delete pass at a time

	mu      sync.Mutex
	pending []consumedTx // in commit order
	settled cdc.LSN      // the newest watermark from the dispatcher
	acked   cdc.LSN
}

// consumedTx is the outbox rows one transaction inserted. It is known by
// its commit LSN: its end LSN comes only with its last piece, after its
// rows were evaluated (cdc.Transaction.Part). A watermark is always the
// end LSN of a transaction, and no transaction ends between another's
// commit LSN and end LSN, so the transaction is settled exactly when its
// commit LSN is below the watermark.
type consumedTx struct {
	commit cdc.LSN
	ids    []int64
}

// NewConsumed returns a Consumed for table ("schema.table") in the
// database at url that passes each watermark on to ack once the rows
// before it are deleted.
func NewConsumed(url, table string, ack func(cdc.LSN), log zerolog.Logger) (*Consumed, error) {
	if _, _, err := outbox.SplitTable(table); err != nil {
		return nil, err
	}
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parsing the source database URL: %w", err)
	}
	pcfg.MaxConns = 2
	pool, err := pgxpool.NewWithConfig(context.Background(), pcfg)
	if err != nil {
		return nil, fmt.Errorf("configuring the outbox connection pool: %w", err)
	}
	return &Consumed{
		pool: pool, table: table, ack: ack, log: log, wake: make(chan struct{}, 1),
	}, nil
}

// Record notes that the transaction committed at commit inserted row id.
// Calls come in commit order, before the transaction (or the piece of it
// holding the row) is dispatched, so before it can settle.
func (c *Consumed) Record(commit cdc.LSN, id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := len(c.pending); n > 0 && c.pending[n-1].commit == commit {
		c.pending[n-1].ids = append(c.pending[n-1].ids, id)
		return
	}
	c.pending = append(c.pending, consumedTx{commit: commit, ids: []int64{id}})
}

// Ack takes a new settled watermark; it never blocks (the tracker calls it
// under its lock).
func (c *Consumed) Ack(lsn cdc.LSN) {
	c.mu.Lock()
	if lsn > c.settled {
		c.settled = lsn
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Run deletes and acknowledges until ctx ends, retrying failed deletes.
func (c *Consumed) Run(ctx context.Context) {
	backoff := time.Duration(0)
	for {
		var retry <-chan time.Time
		if err := c.Flush(ctx); err != nil {
			backoff = min(max(2*backoff, 250*time.Millisecond), 30*time.Second)
			c.log.Warn().Err(err).Stringer("retry_in", backoff).Msg("deleting consumed outbox rows; the slot waits")
			retry = time.After(backoff)
		} else {
			backoff = 0
		}
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		case <-retry:
		}
	}
}

// Flush deletes the rows of every settled transaction and acknowledges
// the watermark.
func (c *Consumed) Flush(ctx context.Context) error {
	c.flush.Lock()
	defer c.flush.Unlock()
	c.mu.Lock()
	lsn := c.settled
	var ids []int64
	n := 0
	for n < len(c.pending) && c.pending[n].commit < lsn {
		ids = append(ids, c.pending[n].ids...)
		n++
	}
	c.mu.Unlock()
	if len(ids) > 0 {
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := outbox.DeleteRows(dctx, c.pool, c.table, ids)
		cancel()
		if err != nil {
			return err
		}
	}
	c.mu.Lock()
	c.pending = append(c.pending[:0], c.pending[n:]...)
	c.mu.Unlock()
	if lsn > c.acked {
		c.acked = lsn
		c.ack(lsn)
	}
	return nil
}

// Close releases the connections.
func (c *Consumed) Close() { c.pool.Close() }
