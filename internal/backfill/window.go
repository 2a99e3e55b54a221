package backfill

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/walhook/walhook/cdc"
)

// MessagePrefix is the prefix of the watermark messages a backfill writes
// into the WAL (pg_logical_emit_message). Their content is "low:<token>" or
// "high:<token>", token naming one chunk of one run.
const MessagePrefix = "walhook.backfill"

// window is one chunk between its watermarks: what the stream changed of
// the chunk's table after the low watermark, and the chunk's rows once
// read.
type window struct {
	token  string
	schema string
	table  string
	key    []string // the table's primary key columns

	open    bool // the low watermark went by
	changed map[string]struct{}
	// early holds, per transaction id, the keys changed by transactions
	// of the table that committed after the window was registered but
	// before its low watermark. A transaction whose commit record precedes
	// the low watermark can still be invisible to the chunk's snapshot (it
	// commits in the WAL before it leaves the server's list of running
	// transactions); snapshot says which were, and their keys count as
	// changed too.
	early    map[uint32]*earlyChanges
	snapshot snapshot
	// fromSeq is windows.seq when the window was registered.
	fromSeq uint64
	// unkeyed is set when a change of the table inside the window could
	// not be tied to one primary key (a truncate, or a delete whose replica
	// identity is another index): the chunk is read again.
	unkeyed bool

	rows    []cdc.Change // the chunk as read, in key order
	rowsSet bool
}

// earlyChanges are the keys one transaction changed before the low
// watermark.
type earlyChanges struct {
	keys    []string
	unkeyed bool
}

// closed is what the high watermark of a window settles: the rows that
// go out, how many were dropped, and whether the chunk must be read again.
type closed struct {
	token   string
	emitted int
	dropped int
	retry   bool
	// missing reports a high watermark whose rows were never set: a bug
	// in the runner, reported rather than emitting nothing silently.
	missing bool
	endLSN  cdc.LSN
}

// windows tracks the open chunk windows. It is a pure state machine over
// the stream: process takes each transaction and returns it with the rows
// of any window it closes appended. Not safe for concurrent use.
type windows struct {
	byToken map[string]*window
	// recent remembers the last transactions that changed rows (a ring of
	// recentSize), seq counts them: a transaction the stream carried
	// before a window was registered can still be invisible to the chunk's
	// snapshot (its backend had flushed its commit record but not yet left
	// the list of running transactions, or waits for a synchronous
	// standby), and the chunk is then read again.
	recent []recentTx
	seq    uint64
	// carry follows the transaction being processed across its pieces
	// (cdc.Transaction.Part).
	carry carry
}

// carry is what a transaction handed over in pieces has shown so far: a
// high watermark in a piece that is not the last closes its window, but
// the chunk's rows and the outcome wait for the last piece, which has the
// end LSN the rows settle with and after whose changes they go.
type carry struct {
	commit cdc.LSN
	next   int // position after the transaction's last change so far
	done   []closed
	extra  []cdc.Change
}

// recentSize is how many transactions windows remembers.
const recentSize = 4096

// recentTx is a transaction the stream carried: its id and the tables it
// changed.
type recentTx struct {
	xid    uint32
	tables []tableName
}

type tableName struct{ schema, table string }

func newWindows() *windows {
	return &windows{byToken: map[string]*window{}, recent: make([]recentTx, recentSize)}
}

// add registers a window before its low watermark is written.
func (ws *windows) add(w *window) {
	w.changed = map[string]struct{}{}
	w.early = map[uint32]*earlyChanges{}
	w.fromSeq = ws.seq
	ws.byToken[w.token] = w
}

// remember records tx in the ring of recent transactions; the pieces of
// one transaction share its entry.
func (ws *windows) remember(tx *cdc.Transaction) {
	if len(tx.Changes) == 0 {
		return
	}
	var r *recentTx
	if last := &ws.recent[(ws.seq+recentSize-1)%recentSize]; tx.Part > 0 && ws.seq > 0 && last.xid == tx.XID {
		r = last
	} else {
		r = &ws.recent[ws.seq%recentSize]
		ws.seq++
		r.xid, r.tables = tx.XID, r.tables[:0]
	}
	for i := range tx.Changes {
		c := &tx.Changes[i]
		if c.Op == cdc.OpRead {
			continue
		}
		name := tableName{c.Schema, c.Table}
		if !slices.Contains(r.tables, name) {
			r.tables = append(r.tables, name)
		}
	}
}

// invisibleBefore reports whether a transaction of w's table that the
// stream carried before w was registered was still running for w's
// snapshot (or is too old to tell and the snapshot lists running ones).
func (ws *windows) invisibleBefore(w *window) bool {
	if !w.snapshot.set || len(w.snapshot.xip) == 0 {
		return false
	}
	name := tableName{w.schema, w.table}
	oldest := uint64(0)
	if ws.seq > recentSize {
		oldest = ws.seq - recentSize
	}
	for seq := oldest; seq < w.fromSeq; seq++ {
		r := &ws.recent[seq%recentSize]
		if _, running := w.snapshot.xip[r.xid]; running && slices.Contains(r.tables, name) {
			return true
		}
	}
	return false
}

// remove forgets a window (a chunk abandoned by its runner).
func (ws *windows) remove(token string) { delete(ws.byToken, token) }

// setRows gives a registered window its chunk and the snapshot it was
// read with; false if the window is unknown.
func (ws *windows) setRows(token string, rows []cdc.Change, snap snapshot) bool {
	w, ok := ws.byToken[token]
	if ok {
		w.rows, w.rowsSet, w.snapshot = rows, true, snap
	}
	return ok
}

// active reports whether any window is registered.
func (ws *windows) active() bool { return len(ws.byToken) > 0 }

// process applies one transaction to the windows, in stream order: a low
// watermark opens its window, each change of an open window's table marks
// its key as changed, and a high watermark closes its window. The rows of
// a closed window that the stream did not change are appended to tx as
// changes with Op read, after tx's own changes: the high watermark is
// written in a transaction of its own, so they sit exactly at its place in
// the stream. A transaction handed over in pieces gets them, and reports
// the windows closed, with its last piece. Watermarks of unknown tokens (a
// previous process's, replayed after a restart) are ignored.
func (ws *windows) process(tx cdc.Transaction) (cdc.Transaction, []closed) {
	defer ws.remember(&tx)
	if tx.CommitLSN != ws.carry.commit {
		ws.carry = carry{commit: tx.CommitLSN}
	}
	if n := len(tx.Changes); n > 0 {
		ws.carry.next = tx.Changes[n-1].Position + 1
	}
	if len(ws.byToken) == 0 && len(ws.carry.done) == 0 {
		return tx, nil
	}
	// Positions of changes and messages count from the transaction's
	// start; base is where this piece starts.
	base := 0
	if len(tx.Changes) > 0 {
		base = tx.Changes[0].Position
	} else if len(tx.Messages) > 0 {
		base = tx.Messages[0].Position
	}
	next := 0 // next message to apply
	for i := 0; i <= len(tx.Changes); i++ {
		for ; next < len(tx.Messages) && tx.Messages[next].Position-base <= i; next++ {
			if c, rows, ok := ws.message(tx.Messages[next]); ok {
				ws.carry.done = append(ws.carry.done, c)
				ws.carry.extra = append(ws.carry.extra, rows...)
			}
		}
		if i < len(tx.Changes) {
			ws.change(&tx.Changes[i])
		}
	}
	if tx.More {
		return tx, nil
	}
	done, extra, pos := ws.carry.done, ws.carry.extra, ws.carry.next
	ws.carry = carry{}
	for i := range done {
		done[i].endLSN = tx.EndLSN
	}
	if len(extra) == 0 {
		return tx, done
	}
	changes := make([]cdc.Change, 0, len(tx.Changes)+len(extra))
	changes = append(changes, tx.Changes...)
	for _, r := range extra {
		r.XID, r.CommitTime, r.CommitLSN, r.EndLSN = tx.XID, tx.CommitTime, tx.CommitLSN, tx.EndLSN
		r.Position = pos
		pos++
		changes = append(changes, r)
	}
	tx.Changes = changes
	return tx, done
}

// message applies a watermark; ok reports that it closed a window.
func (ws *windows) message(m cdc.Message) (c closed, rows []cdc.Change, ok bool) {
	if m.Prefix != MessagePrefix {
		return c, nil, false
	}
	kind, token, _ := strings.Cut(string(m.Content), ":")
	w := ws.byToken[token]
	if w == nil {
		return c, nil, false
	}
	switch kind {
	case "low":
		w.open = true
		return c, nil, false
	case "high":
		delete(ws.byToken, token)
		c = closed{token: token}
		switch {
		case !w.rowsSet:
			c.missing = true
		case !w.open:
			// A high watermark before its low one cannot be; an unkeyed
			// change leaves no safe row: read the chunk again.
			c.retry = true
		default:
			for xid, e := range w.early {
				if !w.snapshot.visible(xid) {
					w.unkeyed = w.unkeyed || e.unkeyed
					for _, k := range e.keys {
						w.changed[k] = struct{}{}
					}
				}
			}
			if w.unkeyed || ws.invisibleBefore(w) {
				c.retry = true
				break
			}
			rows = reconcile(w.rows, w.key, w.changed)
			c.emitted, c.dropped = len(rows), len(w.rows)-len(rows)
		}
		return c, rows, true
	}
	return c, nil, false
}

// change marks the keys a captured change touched in the open windows of
// its table.
func (ws *windows) change(c *cdc.Change) {
	if c.Op == cdc.OpRead {
		return
	}
	for _, w := range ws.byToken {
		if w.schema != c.Schema || w.table != c.Table {
			continue
		}
		mark := func(k string) { w.changed[k] = struct{}{} }
		unkeyed := &w.unkeyed
		if !w.open {
			e := w.early[c.XID]
			if e == nil {
				e = &earlyChanges{}
				w.early[c.XID] = e
			}
			mark = func(k string) { e.keys = append(e.keys, k) }
			unkeyed = &e.unkeyed
		}
		if c.Op == cdc.OpTruncate {
			*unkeyed = true
			continue
		}
		for _, row := range []map[string]any{c.New, c.Old} {
			if row == nil {
				continue
			}
			if k, ok := rowKey(row, w.key); ok {
				mark(k)
			} else {
				*unkeyed = true
			}
		}
	}
}

// reconcile returns the chunk rows whose key the stream did not change
// between the watermarks, in chunk order: for the others the stream's own
// change, later than the chunk's read, stands for the row.
func reconcile(rows []cdc.Change, key []string, changed map[string]struct{}) []cdc.Change {
	if len(changed) == 0 {
		return rows
	}
	out := make([]cdc.Change, 0, len(rows))
	for _, r := range rows {
		if k, ok := rowKey(r.New, key); ok {
			if _, hit := changed[k]; hit {
				continue
			}
		}
		out = append(out, r)
	}
	return out
}

// rowKey is the identity of a row's primary key: the JSON array of its
// key column values in key order. ok is false when row lacks a key column.
func rowKey(row map[string]any, key []string) (string, bool) {
	if row == nil || len(key) == 0 {
		return "", false
	}
	vals := make([]any, len(key))
	for i, k := range key {
		v, ok := row[k]
		if !ok {
			return "", false
		}
		vals[i] = v
	}
	b, err := json.Marshal(vals)
	if err != nil {
		return "", false
	}
	return string(b), true
}
