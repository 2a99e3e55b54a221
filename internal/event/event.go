// Package event defines the events walhook delivers and how their ids are made.
package event

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"encoding/json"
	"time"

	"github.com/walhook/walhook/cdc"
)

// Event is a named event produced by a rule from one captured change.
type Event struct {
	// ID is deterministic (see NewID): a change replayed after a crash yields
	// the same id, which is sent as webhook-id and as the body's "id".
	ID   string
	Type string
	// Key orders and de-duplicates events; by default the row's primary key.
	Key string
	// Tenant scopes the event to API-registered endpoints of that tenant;
	// empty means no tenant.
	Tenant string
	// Timestamp is the commit time of the transaction.
	Timestamp time.Time
	// Data is the event's payload as JSON.
	Data json.RawMessage
	// Endpoint, when set, is the id of the only endpoint the event goes to
	// (a backfill aimed at one subscriber); empty means every subscriber.
	Endpoint string

	// Where the event came from: the table ("schema.table") and the
	// operation; both empty for an outbox event (the application named it).
	Table     string
	Op        cdc.Op
	CommitLSN cdc.LSN
	EndLSN    cdc.LSN
	Position  int // the change's position within its transaction
}

// Failure records a rule that failed on one change (for example a `when`
// that met a null), or an endpoint body that could not be rendered. It is
// persisted and exposed, never dropped silently, and it keeps what a replay
// needs (Change or Event) to evaluate it again after a fix
// (docs/operations.md, "Failed evaluations").
type Failure struct {
	Rule      string // the event name of the rule ("endpoint NAME body", "outbox")
	Table     string
	Op        cdc.Op
	XID       uint32
	CommitLSN cdc.LSN
	EndLSN    cdc.LSN
	Position  int
	Error     string
	// Row is the change's data (new, or old on delete) as JSON, for replay
	// and diagnosis. It may hold personal data: log it only at debug level.
	Row json.RawMessage
	// Old is the row before an update as JSON (only its key columns unless
	// the table has REPLICA IDENTITY FULL); empty otherwise.
	Old json.RawMessage

	// EventType is the type of the event the failure stands for: the rule's
	// event name, or the type of the event whose body failed.
	EventType string
	// EventID is the id that event has, or would have had: a replay sends
	// the event under it.
	EventID string
	// Endpoint, when set, is the only endpoint a replay sends to: the one
	// whose body failed, or a backfill's target.
	Endpoint string
	// Change is the change as the rule saw it (nil when not kept).
	Change *cdc.Change
	// Event is the event whose body failed to render (body failures).
	Event *Event
}

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// NewID returns the deterministic id of the event rule makes from the change
// at position within the transaction committed at commitLSN:
// "evt_" and 26 characters of Crockford base32 of a SHA-256 over the three.
func NewID(commitLSN cdc.LSN, position int, rule string) string {
	var buf [128]byte // hashed without an allocation unless rule is long
	in := binary.BigEndian.AppendUint64(buf[:0], uint64(commitLSN))
	in = binary.BigEndian.AppendUint64(in, uint64(position))
	in = append(in, rule...)
	return IDOf(sha256.Sum256(in))
}

// NewReadID returns the deterministic id of the event rule makes from a row
// a backfill read: "evt_" and 26 characters of Crockford base32 of a
// SHA-256 over "read", the backfill's id seed, the row's primary key (the
// JSON array of its key column values, in key order) and the rule, each
// followed by a NUL byte. Reading the same row again in the same backfill
// (or in one with the same seed) gives the same id.
func NewReadID(seed string, key []byte, rule string) string {
	var buf [256]byte // hashed without an allocation unless the key is long
	in := append(buf[:0], "read\x00"...)
	in = append(append(in, seed...), 0)
	in = append(append(in, key...), 0)
	in = append(append(in, rule...), 0)
	return IDOf(sha256.Sum256(in))
}

// IDOf is the event id of a SHA-256 sum: "evt_" and 26 characters of
// Crockford base32 of its first 16 bytes, in one allocation.
func IDOf(sum [sha256.Size]byte) string {
	var b [4 + 26]byte
	copy(b[:], "evt_")
	idEncoding.Encode(b[4:], sum[:16])
	return string(b[:])
}

// NewTestID returns a random id for a test event ("evt_test_" + 26 chars).
func NewTestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "evt_test_" + idEncoding.EncodeToString(b[:])
}
