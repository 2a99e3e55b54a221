// Package outbox turns outbox-table rows into events: ready-made events
// written by the application, and row changes captured by the trigger
// fallback, which go through the rules as if they came from the slot. It
// serves both ways of reading the table: polling (package cdc/outbox) and
// through the replication slot (Source.Evaluate).
package outboxevents

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/cdc/outbox"
	"github.com/walhook/walhook/internal/event"
	"github.com/walhook/walhook/internal/rules"
)

// idEncoding is event.NewID's alphabet (Crockford base32, lowercase).
var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// EventID is the id of the event made from row rowID of the outbox table
// ("schema.table"): rule is empty for a ready-made event and the rule's
// name for a captured change. Polling and the slot give a row the same id,
// so a row delivered again after a crash carries the same webhook-id.
func EventID(table string, rowID int64, rule string) string {
	h := sha256.New()
	h.Write([]byte("walhook outbox\x00"))
	h.Write([]byte(table))
	var b [9]byte
	binary.BigEndian.PutUint64(b[1:], uint64(rowID))
	h.Write(b[:])
	h.Write([]byte(rule))
	sum := h.Sum(nil)
	return "evt_" + idEncoding.EncodeToString(sum[:16])
}

// Source makes events from the rows of one outbox table.
type Source struct {
	table string // "schema.table"
	rules *rules.Rules
	// schema and name split table, to recognise its changes in the slot.
	schema, name string
}

// NewSource returns the Source of outbox table table ("schema.table");
// captured changes go through r.
func NewSource(table string, r *rules.Rules) (*Source, error) {
	schema, name, err := outbox.SplitTable(table)
	if err != nil {
		return nil, err
	}
	return &Source{table: schema + "." + name, rules: r, schema: schema, name: name}, nil
}

// Table is the outbox table, "schema.table".
func (s *Source) Table() string { return s.table }

// Events appends to out the events of claimed rows, in row order.
//
// An event's CommitLSN and EndLSN hold the row id (there is no WAL
// position when polling): the retry store orders an endpoint's waiting
// deliveries of one key by them, which is then the outbox order.
func (s *Source) Events(rows []outbox.Row, out []event.Event) ([]event.Event, []event.Failure) {
	var failures []event.Failure
	for i := range rows {
		var fs []event.Failure
		out, fs = s.row(&rows[i], cdc.LSN(rows[i].ID), cdc.LSN(rows[i].ID), 0, out)
		failures = append(failures, fs...)
	}
	return out, failures
}

// row appends the events of one outbox row.
func (s *Source) row(r *outbox.Row, commit, end cdc.LSN, position int, out []event.Event) ([]event.Event, []event.Failure) {
	if r.EventType != outbox.ChangeType {
		return append(out, event.Event{
			ID:        EventID(s.table, r.ID, ""),
			Type:      r.EventType,
			Key:       r.Key,
			Tenant:    r.Tenant,
			Timestamp: r.CreatedAt,
			Data:      r.Payload,
			Table:     s.table,
			CommitLSN: commit,
			EndLSN:    end,
			Position:  position,
		}), nil
	}
	fail := func(err error) []event.Failure {
		return []event.Failure{{
			Rule: "outbox", Table: s.table, Op: cdc.OpInsert, CommitLSN: commit, EndLSN: end, Position: position,
			Error: err.Error(), Row: r.Payload,
		}}
	}
	if r.Change == nil {
		err := r.Err
		if err == nil {
			err = fmt.Errorf("outbox row %d holds a captured change, which only polling (mode = \"outbox\") reads", r.ID)
		}
		return out, fail(err)
	}
	c := *r.Change
	c.CommitLSN, c.EndLSN, c.Position = commit, end, position
	n := len(out)
	out, fs := s.rules.Evaluate(&c, out)
	for i := n; i < len(out); i++ {
		out[i].ID = EventID(s.table, r.ID, out[i].Type)
	}
	for i := range fs {
		fs[i].EventID = EventID(s.table, r.ID, fs[i].EventType) // what a replay sends it as
	}
	return out, fs
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
		r, err := rowOf(c.New)
		if err != nil {
			row, _ := json.Marshal(c.New)
			return out, []event.Failure{{
				Rule: "outbox", Table: s.table, Op: c.Op, XID: c.XID, CommitLSN: c.CommitLSN, EndLSN: c.EndLSN,
				Position: c.Position, Error: err.Error(), Row: row,
			}}
		}
		if consumed != nil {
			consumed(c.CommitLSN, r.ID)
		}
		out, fs := s.row(&r, c.CommitLSN, c.EndLSN, c.Position, out)
		for i := range fs {
			fs[i].XID = c.XID
		}
		return out, fs
	}
}

// rowOf reads an outbox row from an inserted tuple as the Reader decodes it.
func rowOf(m map[string]any) (outbox.Row, error) {
	var r outbox.Row
	id, ok := m["id"].(int64)
	if !ok {
		return r, fmt.Errorf("outbox row without an integer id (columns id, event_type, key, tenant, payload, created_at expected)")
	}
	r.ID = id
	if r.EventType, ok = m["event_type"].(string); !ok {
		return r, fmt.Errorf("outbox row %d has no event_type", id)
	}
	r.Key, _ = m["key"].(string)
	r.Tenant, _ = m["tenant"].(string)
	switch p := m["payload"].(type) {
	case json.RawMessage:
		r.Payload = p
	case nil:
		r.Payload = json.RawMessage("null")
	default:
		return r, fmt.Errorf("outbox row %d: payload is not json or jsonb", id)
	}
	if ts, ok := m["created_at"].(string); ok {
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return r, fmt.Errorf("outbox row %d: created_at %q: %w", id, ts, err)
		}
		r.CreatedAt = t
	}
	return r, nil
}
