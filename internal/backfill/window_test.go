package backfill

import (
	"reflect"
	"testing"

	"github.com/walhook/walhook/cdc"
)

func row(id int64, name string) cdc.Change {
	return cdc.Change{Schema: "public", Table: "contacts", Op: cdc.OpRead,
		New: map[string]any{"id": id, "name": name}, Key: []string{"id"}}
}

func mark(kind, token string, pos int) cdc.Message {
	return cdc.Message{Prefix: MessagePrefix, Content: []byte(kind + ":" + token), Position: pos}
}

func watermarkTx(end cdc.LSN, m cdc.Message) cdc.Transaction {
	return cdc.Transaction{EndLSN: end, CommitLSN: end - 1, Messages: []cdc.Message{m}}
}

func changeTx(end cdc.LSN, changes ...cdc.Change) cdc.Transaction {
	return cdc.Transaction{EndLSN: end, CommitLSN: end - 1, Changes: changes}
}

func live(op cdc.Op, table string, newRow, oldRow map[string]any) cdc.Change {
	return cdc.Change{Schema: "public", Table: table, Op: op, New: newRow, Old: oldRow, Key: []string{"id"}}
}

func ids(changes []cdc.Change) []int64 {
	var out []int64
	for _, c := range changes {
		if c.Op == cdc.OpRead {
			out = append(out, c.New["id"].(int64))
		}
	}
	return out
}

// newChunk registers a window over contacts with rows 1..n.
func newChunk(ws *windows, token string, n int64) {
	ws.add(&window{token: token, schema: "public", table: "contacts", key: []string{"id"}})
	var rows []cdc.Change
	for i := int64(1); i <= n; i++ {
		rows = append(rows, row(i, "v1"))
	}
	ws.setRows(token, rows, snapshot{})
}

func TestWindowDropsRowsTheStreamChanged(t *testing.T) {
	t.Parallel()
	ws := newWindows()
	newChunk(ws, "a", 5)

	// Before the low watermark: the chunk read is later, nothing to drop.
	out, done := ws.process(changeTx(10, live(cdc.OpUpdate, "contacts", map[string]any{"id": int64(1)}, nil)))
	if len(done) != 0 || len(out.Changes) != 1 {
		t.Fatalf("before low: done %v, changes %d", done, len(out.Changes))
	}
	ws.process(watermarkTx(20, mark("low", "a", 0)))
	// Inside the window: an update of 2, a delete of 4, an update that
	// moved 5's key to 50, a change of another table with id 3.
	ws.process(changeTx(30,
		live(cdc.OpUpdate, "contacts", map[string]any{"id": int64(2), "name": "v2"}, nil),
		live(cdc.OpDelete, "contacts", nil, map[string]any{"id": int64(4)}),
		live(cdc.OpUpdate, "contacts", map[string]any{"id": int64(50)}, map[string]any{"id": int64(5)}),
		live(cdc.OpInsert, "deals", map[string]any{"id": int64(3)}, nil),
	))
	out, done = ws.process(watermarkTx(40, mark("high", "a", 0)))
	if len(done) != 1 || done[0].token != "a" || done[0].emitted != 2 || done[0].dropped != 3 || done[0].endLSN != 40 {
		t.Fatalf("closed = %+v, want a with 2 emitted, 3 dropped, at 40", done)
	}
	if got := ids(out.Changes); !reflect.DeepEqual(got, []int64{1, 3}) {
		t.Fatalf("emitted ids %v, want [1 3]", got)
	}
	for i, c := range out.Changes {
		if c.EndLSN != 40 || c.CommitLSN != 39 || c.Position != i {
			t.Errorf("row %d: end %s commit %s position %d; want the high watermark's transaction", i, c.EndLSN, c.CommitLSN, c.Position)
		}
	}
	if ws.active() {
		t.Error("window still registered after its high watermark")
	}
	// A replayed high watermark of a closed window does nothing.
	if out, done := ws.process(watermarkTx(40, mark("high", "a", 0))); len(done) != 0 || len(out.Changes) != 0 {
		t.Errorf("replayed watermark: done %v, changes %d", done, len(out.Changes))
	}
}

func TestWindowMessagesInOrderWithChanges(t *testing.T) {
	t.Parallel()
	ws := newWindows()
	newChunk(ws, "b", 3)
	// One transaction: update 1, low, update 2, high. Only 2 is inside.
	tx := cdc.Transaction{EndLSN: 50, Changes: []cdc.Change{
		live(cdc.OpUpdate, "contacts", map[string]any{"id": int64(1)}, nil),
		live(cdc.OpUpdate, "contacts", map[string]any{"id": int64(2)}, nil),
	}, Messages: []cdc.Message{mark("low", "b", 1), mark("high", "b", 2)}}
	tx.Changes[1].Position = 1
	out, done := ws.process(tx)
	if len(done) != 1 {
		t.Fatalf("closed = %v", done)
	}
	if got := ids(out.Changes); !reflect.DeepEqual(got, []int64{1, 3}) {
		t.Errorf("emitted %v, want [1 3]", got)
	}
	if len(out.Changes) != 4 || out.Changes[0].Op != cdc.OpUpdate || out.Changes[2].Position != 2 {
		t.Errorf("live changes must keep their positions: %+v", out.Changes)
	}
}

func TestWindowRetriesAfterUnkeyedChange(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]cdc.Change{
		"truncate":              {Schema: "public", Table: "contacts", Op: cdc.OpTruncate},
		"delete by other index": live(cdc.OpDelete, "contacts", nil, map[string]any{"email": "a@x"}),
	} {
		t.Run(name, func(t *testing.T) {
			ws := newWindows()
			newChunk(ws, "c", 2)
			ws.process(watermarkTx(10, mark("low", "c", 0)))
			ws.process(changeTx(20, c))
			out, done := ws.process(watermarkTx(30, mark("high", "c", 0)))
			if len(done) != 1 || !done[0].retry || len(out.Changes) != 0 {
				t.Fatalf("done %+v, %d changes; want a retry and nothing emitted", done, len(out.Changes))
			}
		})
	}
}

func TestWindowWithoutRowsIsReported(t *testing.T) {
	t.Parallel()
	ws := newWindows()
	ws.add(&window{token: "d", schema: "public", table: "contacts", key: []string{"id"}})
	ws.process(watermarkTx(10, mark("low", "d", 0)))
	_, done := ws.process(watermarkTx(20, mark("high", "d", 0)))
	if len(done) != 1 || !done[0].missing {
		t.Fatalf("done = %+v, want missing rows reported", done)
	}
}

func TestRowKey(t *testing.T) {
	t.Parallel()
	k, ok := rowKey(map[string]any{"a": int64(1), "b": "x", "c": 3.5}, []string{"b", "a"})
	if !ok || k != `["x",1]` {
		t.Errorf("rowKey = %q, %v", k, ok)
	}
	if _, ok := rowKey(map[string]any{"a": int64(1)}, []string{"a", "b"}); ok {
		t.Error("a row without every key column has no key")
	}
}

// TestWindowEarlyInvisibleTransaction: a transaction that commits before
// the low watermark but that the chunk's snapshot still saw as running
// (its commit record precedes the watermark, its end of transaction does
// not precede the read) makes the chunk's copy of its rows stale: they are
// dropped too. A transaction the snapshot saw leaves its rows alone.
func TestWindowEarlyInvisibleTransaction(t *testing.T) {
	t.Parallel()
	ws := newWindows()
	ws.add(&window{token: "e", schema: "public", table: "contacts", key: []string{"id"}})
	early := func(xid uint32, id int64) cdc.Transaction {
		c := live(cdc.OpUpdate, "contacts", map[string]any{"id": id}, nil)
		c.XID = xid
		return cdc.Transaction{XID: xid, EndLSN: cdc.LSN(xid), Changes: []cdc.Change{c}}
	}
	ws.process(early(100, 1)) // seen by the snapshot
	ws.process(early(105, 2)) // in the snapshot's running list
	ws.process(early(120, 3)) // at or past its xmax
	ws.process(watermarkTx(200, mark("low", "e", 0)))
	snap, err := parseSnapshot("104:120:105,110")
	if err != nil {
		t.Fatal(err)
	}
	ws.setRows("e", []cdc.Change{row(1, "a"), row(2, "a"), row(3, "a"), row(4, "a")}, snap)
	out, done := ws.process(watermarkTx(300, mark("high", "e", 0)))
	if len(done) != 1 || done[0].dropped != 2 {
		t.Fatalf("closed = %+v", done)
	}
	if got := ids(out.Changes); !reflect.DeepEqual(got, []int64{1, 4}) {
		t.Errorf("emitted %v, want [1 4]", got)
	}
}

func TestParseSnapshot(t *testing.T) {
	t.Parallel()
	s, err := parseSnapshot("10:20:")
	if err != nil || !s.visible(15) || s.visible(20) || s.visible(25) {
		t.Errorf("10:20: → %+v, %v", s, err)
	}
	if _, err := parseSnapshot("10:x:"); err == nil {
		t.Error("a bad snapshot was accepted")
	}
	// xid8 values beyond 32 bits compare by their low 32 bits, as pgoutput
	// sends xids.
	s, _ = parseSnapshot("4294967396:4294967400:4294967398")
	if !s.visible(100) || s.visible(102) || s.visible(104) {
		t.Errorf("epoch 1 snapshot %+v", s)
	}
}

// TestWindowInvisibleBeforeRegistration: a transaction of the table that
// the stream carried before the window was even registered, yet still
// running for the chunk's snapshot (a commit waiting for a synchronous
// standby, say), makes the chunk read again; one of another table or one
// the snapshot saw does not.
func TestWindowInvisibleBeforeRegistration(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		table string
		xip   string
		retry bool
	}{
		"running, same table":    {"contacts", "104:120:105", true},
		"running, other table":   {"deals", "104:120:105", false},
		"seen by the snapshot":   {"contacts", "104:120:110", false},
		"no running transaction": {"contacts", "120:120:", false},
	} {
		t.Run(name, func(t *testing.T) {
			ws := newWindows()
			c := live(cdc.OpUpdate, tc.table, map[string]any{"id": int64(1)}, nil)
			ws.process(cdc.Transaction{XID: 105, EndLSN: 5, Changes: []cdc.Change{c}})
			ws.add(&window{token: "f", schema: "public", table: "contacts", key: []string{"id"}})
			ws.process(watermarkTx(10, mark("low", "f", 0)))
			snap, err := parseSnapshot(tc.xip)
			if err != nil {
				t.Fatal(err)
			}
			ws.setRows("f", []cdc.Change{row(1, "a"), row(2, "a")}, snap)
			out, done := ws.process(watermarkTx(20, mark("high", "f", 0)))
			if len(done) != 1 || done[0].retry != tc.retry {
				t.Fatalf("closed %+v, want retry %v", done, tc.retry)
			}
			if want := 2; !tc.retry && len(out.Changes) != want {
				t.Errorf("%d rows emitted, want %d", len(out.Changes), want)
			}
		})
	}
}

// TestWindowAcrossPieces: a transaction handed over in pieces closes a
// window in a piece that is not its last; the chunk's rows and the
// outcome come with the last piece, after every change of the
// transaction, with its end LSN.
func TestWindowAcrossPieces(t *testing.T) {
	t.Parallel()
	ws := newWindows()
	newChunk(ws, "p", 3)
	update := func(id int64, pos int) cdc.Change {
		c := live(cdc.OpUpdate, "contacts", map[string]any{"id": id}, nil)
		c.Position = pos
		return c
	}
	// Piece 0: update 1, low; piece 1: update 2, high; piece 2: update 9.
	p0 := cdc.Transaction{CommitLSN: 70, XID: 7, More: true, Changes: []cdc.Change{update(1, 0)},
		Messages: []cdc.Message{mark("low", "p", 1)}}
	p1 := cdc.Transaction{CommitLSN: 70, XID: 7, Part: 1, More: true, Changes: []cdc.Change{update(2, 1)},
		Messages: []cdc.Message{mark("high", "p", 2)}}
	p2 := cdc.Transaction{CommitLSN: 70, EndLSN: 80, XID: 7, Part: 2, Changes: []cdc.Change{update(9, 2)}}
	for _, p := range []cdc.Transaction{p0, p1} {
		out, done := ws.process(p)
		if len(done) != 0 || len(out.Changes) != 1 {
			t.Fatalf("piece %d: closed %v, %d changes; want nothing before the last piece", p.Part, done, len(out.Changes))
		}
	}
	out, done := ws.process(p2)
	if len(done) != 1 || done[0].token != "p" || done[0].endLSN != 80 || done[0].emitted != 2 {
		t.Fatalf("last piece: closed %+v, want p with 2 rows at 80", done)
	}
	if got := ids(out.Changes); !reflect.DeepEqual(got, []int64{1, 3}) {
		t.Errorf("emitted %v, want [1 3] (2 changed inside the window)", got)
	}
	for i, c := range out.Changes {
		if c.Position != 2+i || (i > 0 && (c.EndLSN != 80 || c.CommitLSN != 70 || c.XID != 7)) {
			t.Errorf("change %d: position %d end %s commit %s xid %d; want positions 2.. after the transaction's changes", i, c.Position, c.EndLSN, c.CommitLSN, c.XID)
		}
	}
	if ws.seq != 1 {
		t.Errorf("the pieces took %d entries of the recent transactions, want 1", ws.seq)
	}
}
