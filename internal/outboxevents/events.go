// Package outboxevents turns outbox-table rows into events: ready-made
// events written by the application, and row changes captured by the
// trigger fallback, which go through the rules as if they came from the
// slot. It serves both ways of reading the table: polling (package
// cdc/outbox) and through the replication slot (Source.Evaluate).
//
// Every row ends in exactly one of: its event(s), a failed evaluation (a
// row no event can be made of, kept with its row id and the reason,
// replayable), or a counted and logged skip (no endpoint subscribes to its
// event). docs/outbox.md, "Bad rows", lists the checks.
package outboxevents

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/cdc/outbox"
	"github.com/walhook/walhook/internal/event"
	"github.com/walhook/walhook/internal/rules"
)

// EventID is the id of the event made from the outbox row rowID, created
// at created, of the table at origin: rule is empty for a ready-made event
// and the rule's name for a captured change. It is "evt_" and 26 characters
// of Crockford base32 of a SHA-256 over "walhook outbox v2", the cluster's
// system identifier, the database's oid, the table's oid, the row id, the
// row's created_at in microseconds since 1970 and the rule. Polling and
// the slot read the same inputs, so a row delivered again after a crash,
// by either path, carries the same webhook-id; another database, cluster,
// a re-created table or a table whose identity was reset
// (TRUNCATE ... RESTART IDENTITY) gives its rows other ids.
func EventID(origin outbox.Origin, rowID int64, created time.Time, rule string) string {
	var buf [128]byte // hashed without an allocation unless rule is long
	in := append(buf[:0], "walhook outbox v2\x00"...)
	in = binary.BigEndian.AppendUint64(in, origin.System)
	in = binary.BigEndian.AppendUint32(in, origin.Database)
	in = binary.BigEndian.AppendUint32(in, origin.Table)
	in = binary.BigEndian.AppendUint64(in, uint64(rowID))
	in = binary.BigEndian.AppendUint64(in, uint64(created.UnixMicro()))
	in = append(in, rule...)
	return event.IDOf(sha256.Sum256(in))
}

// Options tune a Source.
type Options struct {
	// Events, when not nil, are the event names a row may carry (the
	// outbox's declared events); a row with another event_type is a failed
	// evaluation. Nil: any name is accepted.
	Events []string
	// Skipped, when set, counts each row skipped, by reason
	// ("no_subscriber": no endpoint wants its event).
	Skipped func(reason string)
	Logger  zerolog.Logger
}

// Source makes events from the rows of one outbox table.
type Source struct {
	table string // "schema.table"
	rules *rules.Rules
	// schema and name split table, to recognise its changes in the slot.
	schema, name string
	declared     map[string]bool // nil: not enforced
	// origin is the cluster and database the slot reads (Resolve); the
	// table's oid comes with each change.
	origin outbox.Origin
	skips  *skipLog
}

// NewSource returns the Source of outbox table table ("schema.table");
// captured changes go through r.
func NewSource(table string, r *rules.Rules, opts Options) (*Source, error) {
	schema, name, err := outbox.SplitTable(table)
	if err != nil {
		return nil, err
	}
	s := &Source{table: schema + "." + name, rules: r, schema: schema, name: name}
	if opts.Events != nil {
		s.declared = make(map[string]bool, len(opts.Events))
		for _, e := range opts.Events {
			s.declared[e] = true
		}
	}
	s.skips = newSkipLog(s.table, opts.Skipped, opts.Logger)
	return s, nil
}

// Table is the outbox table, "schema.table".
func (s *Source) Table() string { return s.table }

// Resolve reads the system identifier and database oid of the database at
// url, which the ids of rows read through the slot need (the table's oid
// comes with each change). Call it before the first Evaluate; the slot's
// own checks stop walhook if the URL later reaches another cluster.
func (s *Source) Resolve(ctx context.Context, url string) error {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, url)
	if err != nil {
		return fmt.Errorf("connecting to the source database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	o, err := outbox.ReadDatabaseOrigin(cctx, conn)
	if err != nil {
		return err
	}
	s.origin = o
	return nil
}

// Events appends to out the events of claimed rows, in row order, and
// returns the failed evaluations of the rows no event can be made of.
//
// An event's CommitLSN and EndLSN hold the row id (there is no WAL
// position when polling): the retry store orders an endpoint's waiting
// deliveries of one key by them, which is then the outbox order.
func (s *Source) Events(rows []outbox.Row, out []event.Event) ([]event.Event, []event.Failure) {
	var failures []event.Failure
	for i := range rows {
		r := &rows[i]
		var fs []event.Failure
		out, fs = s.row(r, at{commit: cdc.LSN(r.ID), end: cdc.LSN(r.ID), polled: true}, out)
		failures = append(failures, fs...)
	}
	return out, failures
}

// at is where a row was read: its transaction's positions (the row id
// when polling), its position in the transaction, and the insert as the
// slot gave it (nil when polling).
type at struct {
	commit, end cdc.LSN
	position    int
	xid         uint32
	insert      *cdc.Change
	polled      bool
}

// failedAt is the position a failed evaluation of a polled row is stored
// under, in place of its commit and end LSN. The state store keeps one
// failed evaluation per position and rule, and polling has no WAL position:
// the row id would name a row of before a TRUNCATE ... RESTART IDENTITY
// too, so the position is the row's event id, folded to 63 bits.
func failedAt(eventID string) cdc.LSN {
	sum := sha256.Sum256([]byte(eventID))
	return cdc.LSN(binary.BigEndian.Uint64(sum[:8]) >> 1)
}

// row appends the events of one outbox row.
func (s *Source) row(r *outbox.Row, pos at, out []event.Event) ([]event.Event, []event.Failure) {
	if r.Type() == outbox.ChangeType {
		return s.captured(r, pos, out)
	}
	if err := s.check(r); err != nil {
		return out, []event.Failure{s.failure(r, pos, err)}
	}
	return append(out, event.Event{
		ID:        EventID(r.Origin, r.ID, r.CreatedAt, ""),
		Type:      *r.EventType,
		Key:       r.Key,
		Tenant:    r.Tenant,
		Timestamp: r.CreatedAt,
		Data:      r.Payload,
		Table:     s.table,
		CommitLSN: pos.commit,
		EndLSN:    pos.end,
		Position:  pos.position,
	}), nil
}

// captured evaluates the rules on the change a ChangeType row holds.
func (s *Source) captured(r *outbox.Row, pos at, out []event.Event) ([]event.Event, []event.Failure) {
	if r.Change == nil {
		err := r.Err
		if err == nil {
			err = fmt.Errorf("it holds a captured change (%s), which only polling (mode = \"outbox\") decodes", outbox.ChangeType)
		}
		return out, []event.Failure{s.failure(r, pos, err)}
	}
	c := *r.Change
	c.CommitLSN, c.EndLSN, c.Position = pos.commit, pos.end, pos.position
	n := len(out)
	out, fs := s.rules.Evaluate(&c, out)
	for i := n; i < len(out); i++ {
		out[i].ID = EventID(r.Origin, r.ID, r.CreatedAt, out[i].Type)
	}
	for i := range fs {
		f := &fs[i]
		f.EventID = EventID(r.Origin, r.ID, r.CreatedAt, f.EventType) // what a replay sends it as
		if f.XID == 0 {
			f.XID = pos.xid
		}
		if pos.polled {
			f.CommitLSN = failedAt(EventID(r.Origin, r.ID, r.CreatedAt, ""))
			f.EndLSN = f.CommitLSN
			if f.Change != nil { // a replay's failure replaces this one
				f.Change.CommitLSN, f.Change.EndLSN = f.CommitLSN, f.EndLSN
			}
		}
	}
	return out, fs
}

// check says why no event can be made of a ready-made event row.
func (s *Source) check(r *outbox.Row) error {
	switch {
	case r.EventType == nil:
		return fmt.Errorf("event_type is NULL")
	case *r.EventType == "":
		return fmt.Errorf("event_type is empty")
	case s.declared != nil && !s.declared[*r.EventType]:
		return fmt.Errorf("event type %q is not declared in the outbox's events list", *r.EventType)
	}
	if err := checkPayload(r.Payload); err != nil {
		return err
	}
	if r.CreatedAt.IsZero() {
		return fmt.Errorf("created_at is NULL")
	}
	return nil
}

// checkPayload accepts a JSON object or array only: what the body's
// "data" embeds as it is.
func checkPayload(p json.RawMessage) error {
	if p == nil {
		return fmt.Errorf("payload is NULL")
	}
	if !json.Valid(p) {
		var v any
		err := json.Unmarshal(p, &v)
		return fmt.Errorf("payload is not a JSON object or array: %v", err)
	}
	for _, c := range p {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '{', '[':
			return nil
		case '"':
			return fmt.Errorf("payload is not a JSON object or array: it is a JSON string")
		case 'n':
			return fmt.Errorf("payload is not a JSON object or array: it is JSON null")
		case 't', 'f':
			return fmt.Errorf("payload is not a JSON object or array: it is a JSON boolean")
		default:
			return fmt.Errorf("payload is not a JSON object or array: it is a JSON number")
		}
	}
	return fmt.Errorf("payload is empty")
}

// failure is the failed evaluation of a row no event can be made of. It
// keeps the row as an insert into the outbox table, which a replay
// (Replay) evaluates again under the id the row's event would have had.
func (s *Source) failure(r *outbox.Row, pos at, err error) event.Failure {
	id := EventID(r.Origin, r.ID, r.CreatedAt, "")
	if pos.polled {
		pos.commit = failedAt(id)
		pos.end = pos.commit
	}
	c := pos.insert
	if c == nil {
		c = s.insertOf(r)
		// A replay's failure has the same position, and replaces this one.
		c.CommitLSN, c.EndLSN, c.Position = pos.commit, pos.end, pos.position
	}
	row, _ := json.Marshal(c.New)
	return event.Failure{
		Rule: "outbox", Table: s.table, Op: cdc.OpInsert, XID: pos.xid, CommitLSN: pos.commit, EndLSN: pos.end,
		Position: pos.position, Error: fmt.Sprintf("outbox row %d: %v", r.ID, err), Row: row,
		EventType: r.Type(), EventID: id, Change: c,
	}
}

// insertOf is a polled row as the slot would give its insert.
func (s *Source) insertOf(r *outbox.Row) *cdc.Change {
	text := func(v string) any {
		if v == "" {
			return nil
		}
		return v
	}
	row := map[string]any{"id": r.ID, "event_type": nil, "key": text(r.Key), "tenant": text(r.Tenant), "payload": nil, "created_at": nil}
	if r.EventType != nil {
		row["event_type"] = *r.EventType
	}
	if r.Payload != nil {
		row["payload"] = string(r.Payload)
	}
	if !r.CreatedAt.IsZero() {
		row["created_at"] = r.CreatedAt.UTC().Format(time.RFC3339Nano)
	}
	return &cdc.Change{
		Schema: s.schema, Table: s.name, Relation: r.Origin.Table, Op: cdc.OpInsert, New: row,
		Columns: []string{"id", "event_type", "key", "tenant", "payload", "created_at"}, Key: []string{"id"},
		CommitTime: r.CreatedAt,
	}
}

// Evaluate is the dispatcher's evaluation step when the slot carries the
// outbox table: an insert into the table becomes its event directly (with
// the id polling would give it); other changes of the table are ignored;
// changes of other tables go through the rules. consumed, when not nil,
// is told the commit LSN and row id of each insert.
func (s *Source) Evaluate(consumed func(commit cdc.LSN, id int64)) func(c *cdc.Change, out []event.Event) ([]event.Event, []event.Failure) {
	return func(c *cdc.Change, out []event.Event) ([]event.Event, []event.Failure) {
		if c.Table != s.name || c.Schema != s.schema {
			return s.rules.Evaluate(c, out)
		}
		if c.Op != cdc.OpInsert {
			return out, nil
		}
		pos := at{commit: c.CommitLSN, end: c.EndLSN, position: c.Position, xid: c.XID, insert: c}
		r, err := s.rowOf(c)
		if errors.Is(err, errNoID) {
			row, _ := json.Marshal(c.New)
			return out, []event.Failure{{
				Rule: "outbox", Table: s.table, Op: c.Op, XID: c.XID, CommitLSN: c.CommitLSN, EndLSN: c.EndLSN,
				Position: c.Position, Error: err.Error(), Row: row,
			}}
		}
		// A row ends as its events or its failure: consumed either way.
		if consumed != nil {
			consumed(c.CommitLSN, r.ID)
		}
		if err != nil {
			return out, []event.Failure{s.failure(&r, pos, err)}
		}
		return s.row(&r, pos, out)
	}
}

// Replay evaluates again an outbox row a failed evaluation kept (its
// insert), with the Source's current checks; its event keeps id, the id
// the first evaluation gave it.
func (s *Source) Replay(c *cdc.Change, id string) ([]event.Event, []event.Failure) {
	pos := at{commit: c.CommitLSN, end: c.EndLSN, position: c.Position, xid: c.XID, insert: c}
	r, err := s.rowOf(c)
	var evs []event.Event
	var fs []event.Failure
	if err != nil {
		fs = []event.Failure{s.failure(&r, pos, err)}
	} else {
		evs, fs = s.row(&r, pos, nil)
	}
	for i := range evs {
		evs[i].ID = id
	}
	for i := range fs {
		if fs[i].Rule == "outbox" {
			fs[i].EventID = id
		}
	}
	return evs, fs
}

// errNoID is the failure of an inserted row without an id: it cannot be
// named, deleted or replayed.
var errNoID = errors.New("outbox row without an integer id (columns id, event_type, key, tenant, payload, created_at expected)")

// rowOf reads an outbox row from an inserted tuple as the Reader decodes
// it. The error says what is wrong with the row; the row's id is set when
// it has one.
func (s *Source) rowOf(c *cdc.Change) (outbox.Row, error) {
	m := c.New
	r := outbox.Row{Origin: s.origin}
	if c.Relation != 0 {
		r.Origin.Table = c.Relation
	}
	id, ok := m["id"].(int64)
	if !ok {
		return r, errNoID
	}
	r.ID = id
	switch t := m["event_type"].(type) {
	case string:
		r.EventType = &t
	case nil:
	default:
		return r, fmt.Errorf("event_type is not text")
	}
	r.Key = rules.ValueText(m["key"])
	r.Tenant = rules.ValueText(m["tenant"])
	switch p := m["payload"].(type) {
	case json.RawMessage:
		r.Payload = p
	case string:
		r.Payload = json.RawMessage(p)
	case nil:
	default:
		return r, fmt.Errorf("payload is not a JSON object or array: the column is not json, jsonb or text")
	}
	switch ts := m["created_at"].(type) {
	case string:
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return r, fmt.Errorf("created_at %q is not a timestamptz: %w", ts, err)
		}
		r.CreatedAt = t
	case nil:
	default:
		return r, fmt.Errorf("created_at is not a timestamptz")
	}
	if r.Type() == outbox.ChangeType {
		r.Err = fmt.Errorf("it holds a captured change (%s), which only polling (mode = \"outbox\") decodes", outbox.ChangeType)
	}
	return r, nil
}
