package cdc

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/rs/zerolog"

	"github.com/walhook/walhook/internal/pgname"
)

// ReaderConfig configures a Reader.
type ReaderConfig struct {
	// URL is the libpq URL or key=value DSN of the source database. The
	// reader adds replication=database itself for its streaming connection.
	URL string
	// Slot is the permanent pgoutput replication slot, created if missing.
	Slot string
	// Publication is created if missing and kept equal to Tables (but
	// for those captured through InsertsPublication(Publication)).
	Publication string
	// Tables lists the published tables as "schema.table" ("table" means
	// "public.table").
	Tables []string
	// Uses says, by "schema.table", what the rules want of each table; a
	// table without an entry is taken to want every operation. A table
	// without a replica identity whose rules want no update or delete is
	// captured through InsertsPublication(Publication).
	Uses map[string]TableUse
	// StatusInterval is the longest time between two standby status
	// updates, on an idle stream too; default 10s.
	StatusInterval time.Duration
	// ConfirmInterval is how soon a settled position that moved is
	// confirmed to the slot (a status update at most this often on a busy
	// stream), which bounds what a crash reads again; default 1s, at most
	// StatusInterval.
	ConfirmInterval time.Duration
	// HeartbeatInterval is how often the reader, while streaming, writes a
	// tiny logical message into the WAL (on a connection of its own) so an
	// idle database's slot advances; default 30s, negative disables it.
	HeartbeatInterval time.Duration
	// MessagePrefixes lists the prefixes of the transactional logical
	// decoding messages to hand over in Transaction.Messages. With none,
	// pgoutput is not asked for messages at all.
	MessagePrefixes []string
	// MaxBackoff caps the wait between reconnection attempts; default 30s.
	MaxBackoff time.Duration
	// SlotInUseRetry is about how long (±25 %) a Reader whose slot another
	// process streams from (a standby) waits before trying it again, in
	// place of MaxBackoff's growing wait; default 1s. A try costs the
	// source one session and a query (handover.go). Reader.Retry cuts the
	// wait short.
	SlotInUseRetry time.Duration
	// Released, when set, is called (from the Reader's goroutine, with a
	// context that outlives Run's) each time a session that streamed from
	// the slot has ended and closed its replication connection: the place
	// to tell standbys (their Reader.Retry) that the slot is free. It
	// should return within a second or two.
	Released func(ctx context.Context)
	// Records keeps the record of the slot walhook owns (SlotRecords);
	// nil keeps it in memory, for this Reader's life only.
	Records SlotRecords
	// RecordInterval is how often the acknowledged position is recorded
	// (when it moved) before being confirmed; default 1s.
	RecordInterval time.Duration
	// Logger receives the reader's logs.
	Logger zerolog.Logger

	// pieceChanges ends a piece of a large transaction; pieceChanges by
	// default (tests set it lower through export_test.go).
	pieceChanges int
}

// Default intervals of a ReaderConfig.
const (
	DefaultStatusInterval    = 10 * time.Second
	DefaultConfirmInterval   = time.Second
	DefaultHeartbeatInterval = 30 * time.Second
	DefaultMaxBackoff        = 30 * time.Second
	DefaultRecordInterval    = time.Second
	minBackoff               = 250 * time.Millisecond
	// queuedTransactions bounds the transactions (or pieces of one)
	// received but not yet handed to the Sink: with pieces of up to
	// pieceChanges changes, a few tens of MB at most.
	queuedTransactions = 16
	// pieceChanges and pieceBytes end a piece of a large transaction
	// (Transaction.Part): after this many changes, or once its change
	// messages, as received, reach this size. Together with
	// queuedTransactions they bound what the reader holds.
	pieceChanges = 1000
	pieceBytes   = 256 << 10
)

func (c ReaderConfig) withDefaults() ReaderConfig {
	if c.StatusInterval <= 0 {
		c.StatusInterval = DefaultStatusInterval
	}
	if c.ConfirmInterval <= 0 {
		c.ConfirmInterval = DefaultConfirmInterval
	}
	c.ConfirmInterval = min(c.ConfirmInterval, c.StatusInterval)
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.RecordInterval <= 0 {
		c.RecordInterval = DefaultRecordInterval
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.SlotInUseRetry <= 0 {
		c.SlotInUseRetry = DefaultSlotInUseRetry
	}
	if c.MaxBackoff < minBackoff {
		c.MaxBackoff = minBackoff
	}
	if c.pieceChanges <= 0 {
		c.pieceChanges = pieceChanges
	}
	return c
}

var slotName = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

func (c ReaderConfig) validate() error {
	if c.URL == "" {
		return fmt.Errorf("cdc: no database URL")
	}
	if !slotName.MatchString(c.Slot) {
		return fmt.Errorf("cdc: slot name %q must be 1 to 63 lowercase letters, digits or underscores", c.Slot)
	}
	if c.Publication == "" {
		return fmt.Errorf("cdc: no publication name")
	}
	if len(c.Tables) == 0 {
		return fmt.Errorf("cdc: no tables to publish")
	}
	for _, t := range c.Tables {
		if _, _, err := splitTable(t); err != nil {
			return err
		}
	}
	return nil
}

// splitTable splits "schema.table" (or "table", in public).
func splitTable(name string) (schema, table string, err error) {
	if schema, table, err = pgname.SplitTable(name); err != nil {
		return "", "", fmt.Errorf("cdc: %w", err)
	}
	return schema, table, nil
}

// Sink consumes committed transactions, a large one in pieces
// (Transaction.Part, More). Apply is called from one goroutine, in commit
// order, the pieces of a transaction in order and with nothing between
// them; an error stops the Reader. The Sink settles a transaction by
// calling Reader.Ack with its EndLSN (on its final piece), then or later.
// A piece handed over once is not handed over again after a reconnection.
type Sink interface {
	Apply(ctx context.Context, tx Transaction) error
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(ctx context.Context, tx Transaction) error

// Apply calls f.
func (f SinkFunc) Apply(ctx context.Context, tx Transaction) error { return f(ctx, tx) }

// Status is a snapshot of a Reader's state, for metrics and readiness.
type Status struct {
	// Connected reports an open replication connection.
	Connected bool
	// Streaming reports that the slot is ours and changes are flowing.
	Streaming bool
	// Received is the end LSN of the last committed transaction received.
	Received LSN
	// Acked is the position last confirmed to the server (standby status
	// flush position).
	Acked LSN
	// ServerWALEnd is the server's WAL end as last reported to us.
	ServerWALEnd LSN
	// LastCommitTime is the commit time of the last transaction received.
	LastCommitTime time.Time
	// LastError describes the last connection or streaming error, if any.
	LastError string
}
