package cdc

import (
	"time"

	"github.com/jackc/pglogrepl"
)

// LSN is a position in the Postgres write-ahead log.
type LSN = pglogrepl.LSN

// Op is the kind of row change.
type Op string

// The operations a Change can carry.
const (
	OpInsert   Op = "insert"
	OpUpdate   Op = "update"
	OpDelete   Op = "delete"
	OpTruncate Op = "truncate"
	// OpRead is a row read from the table itself by a backfill, not a
	// change captured from the WAL: New is the row, Old is nil.
	OpRead Op = "read"
)

// Valid reports whether op is one of the four operations the WAL carries.
func (op Op) Valid() bool {
	switch op {
	case OpInsert, OpUpdate, OpDelete, OpTruncate:
		return true
	}
	return false
}

// Change is one committed row change, decoded into JSON-faithful Go values.
//
// Values in New and Old are: int64 for integer types, json.Number for numeric
// (no float loss), float64 for float4/float8 (string for NaN and ±Infinity),
// bool, string for text, uuid, enums and unknown types, RFC 3339 strings for
// timestamp, timestamptz and date, json.RawMessage for json and jsonb, base64
// strings for bytea, []any for arrays, and nil for SQL NULL.
type Change struct {
	Schema string
	Table  string
	// Relation is the table's oid as pgoutput names it (its relation id);
	// zero for changes not read from the slot.
	Relation uint32
	Op       Op

	// New holds the row after an insert or update; nil on delete and truncate.
	// Columns listed in Unchanged are left out unless OldFull: then they are
	// copied from Old, so New is always the whole row.
	New map[string]any
	// Old holds the row before an update or delete: only the replica identity
	// (key) columns with REPLICA IDENTITY DEFAULT, the whole row with FULL.
	// Nil on insert and truncate, and on an update that did not touch the key
	// of a table without REPLICA IDENTITY FULL.
	Old map[string]any
	// Unchanged names the columns whose values were TOASTed and not changed
	// by an update. Postgres does not send them in the new row: with
	// REPLICA IDENTITY FULL (OldFull) New carries them from Old; otherwise
	// they are absent from New rather than null.
	Unchanged []string
	// Columns lists the table's column names in table order.
	Columns []string
	// Key lists the replica identity columns (usually the primary key).
	Key []string
	// OldFull reports whether Old carries the whole row (REPLICA IDENTITY FULL).
	OldFull bool

	XID        uint32
	CommitTime time.Time
	// CommitLSN is the position of the transaction's commit record.
	CommitLSN LSN
	// EndLSN is the position just past the commit record: the value to
	// acknowledge once every change of the transaction is settled. Zero in
	// a piece of a transaction that is not its last (Transaction.More):
	// the server sends it only with the commit.
	EndLSN LSN
	// Position is the change's index within its whole transaction, from 0,
	// across the transaction's pieces.
	Position int

	// Backfill is the id of the backfill that read the row (Op read);
	// empty for changes captured from the WAL.
	Backfill string
}

// Transaction is one committed transaction, or one piece of a large one:
// its changes in commit order.
//
// A transaction is handed over in pieces as its changes arrive, so memory
// does not grow with its size (doc.go): a piece ends after pieceChanges
// changes or pieceBytes of change messages, whichever comes first, and a
// smaller transaction is one piece (Part 0, not More). XID, CommitTime and
// CommitLSN are set on every piece (pgoutput sends them in its Begin);
// EndLSN only on the final piece, so the transaction can be acknowledged
// only once all its pieces are settled.
type Transaction struct {
	XID        uint32
	CommitTime time.Time
	CommitLSN  LSN
	EndLSN     LSN // zero while More
	// Part numbers the pieces of one transaction from 0.
	Part int
	// More reports that more pieces of the transaction follow; false on
	// its last piece (or the whole transaction).
	More    bool
	Changes []Change
	// Messages are the transactional logical decoding messages
	// (pg_logical_emit_message(true, ...)) whose prefix the reader was asked
	// for (ReaderConfig.MessagePrefixes), in commit order. A transaction
	// with messages is handed over even when it changed no row.
	Messages []Message
}

// Message is a transactional logical decoding message.
type Message struct {
	Prefix  string
	Content []byte
	// LSN is where the message was written.
	LSN LSN
	// Position is the number of the transaction's changes that precede it
	// (across its pieces).
	Position int
}
