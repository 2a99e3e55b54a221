package cdc_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"testing"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/testenv"
)

// TestCommitOrderAndLSNs runs inserts, updates, deletes and a truncate
// across several tables and checks transactions arrive whole, in commit
// order, with LSNs inside the WAL range each transaction wrote.
func TestCommitOrderAndLSNs(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	db.Exec(t, `CREATE TABLE unpublished (id int)`)
	cfg := testConfig(t, db, "public.contacts", "public.deals", "invoices")
	r := start(t, cfg, true)

	type step struct {
		sql  string
		want []string // "op table"
	}
	steps := []step{
		{`INSERT INTO contacts (id, organization_id, first_name) VALUES (1, 7, 'Ada');
		  INSERT INTO deals (id, organization_id, contact_id, title, amount) VALUES (10, 7, 1, 'Big', 1000.50)`,
			[]string{"insert public.contacts", "insert public.deals"}},
		{`INSERT INTO unpublished VALUES (1)`, nil},
		{`UPDATE deals SET stage = 'won' WHERE id = 10;
		  INSERT INTO invoices (id, deal_id, amount) VALUES (100, 10, 1000.50);
		  INSERT INTO unpublished VALUES (2)`,
			[]string{"update public.deals", "insert public.invoices"}},
		{`DELETE FROM invoices WHERE id = 100; UPDATE contacts SET email = 'ada@example.com' WHERE id = 1`,
			[]string{"delete public.invoices", "update public.contacts"}},
		{`TRUNCATE invoices, deals CASCADE`, []string{"truncate public.invoices", "truncate public.deals"}},
	}
	type bounds struct {
		before, after cdc.LSN
		xid           uint32
	}
	var expected []bounds
	for _, s := range steps {
		before := currentLSN(t, db)
		tx, err := db.Pool.Begin(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var xid int64
		if err := tx.QueryRow(context.Background(), `SELECT txid_current()`).Scan(&xid); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(context.Background(), s.sql); err != nil {
			t.Fatalf("%s: %v", s.sql, err)
		}
		if err := tx.Commit(context.Background()); err != nil {
			t.Fatal(err)
		}
		if s.want != nil {
			expected = append(expected, bounds{before, currentLSN(t, db), uint32(xid)})
		}
	}

	txns := r.sink.waitTransactions(t, len(expected))
	if len(txns) != len(expected) {
		t.Fatalf("got %d transactions, want %d", len(txns), len(expected))
	}
	i := 0
	for _, s := range steps {
		if s.want == nil {
			continue
		}
		tx, b := txns[i], expected[i]
		var got []string
		for pos, c := range tx.Changes {
			got = append(got, describe(c))
			if c.Position != pos || c.XID != tx.XID || c.CommitLSN != tx.CommitLSN || c.EndLSN != tx.EndLSN || !c.CommitTime.Equal(tx.CommitTime) {
				t.Errorf("tx %d change %d: transaction fields not copied: %+v", i, pos, c)
			}
		}
		if !reflect.DeepEqual(got, s.want) {
			t.Errorf("tx %d: got changes %v, want %v", i, got, s.want)
		}
		if tx.XID != b.xid {
			t.Errorf("tx %d: xid %d, want %d", i, tx.XID, b.xid)
		}
		if !(b.before < tx.CommitLSN && tx.CommitLSN < tx.EndLSN && tx.EndLSN <= b.after) {
			t.Errorf("tx %d: commit %s end %s outside [%s, %s]", i, tx.CommitLSN, tx.EndLSN, b.before, b.after)
		}
		if i > 0 && txns[i-1].EndLSN > tx.CommitLSN {
			t.Errorf("tx %d commits at %s before the previous one ends at %s", i, tx.CommitLSN, txns[i-1].EndLSN)
		}
		i++
	}

	ins := txns[0].Changes[1]
	if ins.New["amount"] != nil && ins.New["title"] != "Big" {
		t.Errorf("deal insert: %+v", ins.New)
	}
	if got := ins.Key; !reflect.DeepEqual(got, []string{"id"}) {
		t.Errorf("deals key %v, want [id] (the primary key, although identity is FULL)", got)
	}
	if !reflect.DeepEqual(ins.Columns[:4], []string{"id", "organization_id", "contact_id", "title"}) {
		t.Errorf("deals columns %v", ins.Columns)
	}
	upd := txns[1].Changes[0]
	if upd.Old["stage"] != "lead" || upd.New["stage"] != "won" || !upd.OldFull {
		t.Errorf("deal update: old %v new %v full %v", upd.Old, upd.New, upd.OldFull)
	}
	del := txns[2].Changes[0]
	if del.New != nil || del.Old["id"] != int64(100) || del.Old["status"] != "open" {
		t.Errorf("invoice delete: old %v new %v", del.Old, del.New)
	}
	for _, c := range txns[3].Changes {
		if c.New != nil || c.Old != nil {
			t.Errorf("truncate carries rows: %+v", c)
		}
	}

	last := txns[len(txns)-1].EndLSN
	waitConfirmed(t, db, cfg.Slot, last)
	if st := r.reader.Status(); st.Acked < last || st.Received < last || !st.Streaming || !st.Connected || st.LastCommitTime.IsZero() {
		t.Errorf("status %+v after acknowledging %s", st, last)
	}
}

// TestReplicaIdentity compares old values under REPLICA IDENTITY DEFAULT
// (key columns, only when the key changed) and FULL (the whole row).
func TestReplicaIdentity(t *testing.T) {
	t.Parallel()
	db := testenv.NewEmptyDB(t)
	db.Exec(t, `CREATE TABLE rid_default (id int PRIMARY KEY, a text, b int);
		CREATE TABLE rid_full (id int PRIMARY KEY, a text, b int);
		ALTER TABLE rid_full REPLICA IDENTITY FULL`)
	cfg := testConfig(t, db, "public.rid_default", "public.rid_full")
	r := start(t, cfg, true)

	for _, table := range []string{"rid_default", "rid_full"} {
		db.Exec(t, `INSERT INTO `+table+` VALUES (1, 'x', 1)`)
		db.Exec(t, `UPDATE `+table+` SET a = 'y' WHERE id = 1`)
		db.Exec(t, `UPDATE `+table+` SET id = 2 WHERE id = 1`)
		db.Exec(t, `DELETE FROM `+table+` WHERE id = 2`)
	}
	changes := flatten(r.sink.waitTransactions(t, 8))
	type want struct {
		op      cdc.Op
		old     map[string]any
		oldFull bool
	}
	wants := []want{
		{cdc.OpInsert, nil, false},
		{cdc.OpUpdate, nil, false},
		{cdc.OpUpdate, map[string]any{"id": int64(1)}, false},
		{cdc.OpDelete, map[string]any{"id": int64(2)}, false},
		{cdc.OpInsert, nil, true},
		{cdc.OpUpdate, map[string]any{"id": int64(1), "a": "x", "b": int64(1)}, true},
		{cdc.OpUpdate, map[string]any{"id": int64(1), "a": "y", "b": int64(1)}, true},
		{cdc.OpDelete, map[string]any{"id": int64(2), "a": "y", "b": int64(1)}, true},
	}
	if len(changes) != len(wants) {
		t.Fatalf("got %d changes, want %d", len(changes), len(wants))
	}
	for i, w := range wants {
		c := changes[i]
		if c.Op != w.op || !reflect.DeepEqual(c.Old, w.old) || c.OldFull != w.oldFull {
			t.Errorf("change %d (%s): op %s old %v full %v; want op %s old %v full %v", i, c.Table, c.Op, c.Old, c.OldFull, w.op, w.old, w.oldFull)
		}
		if !reflect.DeepEqual(c.Key, []string{"id"}) {
			t.Errorf("change %d (%s): key %v", i, c.Table, c.Key)
		}
	}
	if got := changes[2].New; !reflect.DeepEqual(got, map[string]any{"id": int64(2), "a": "y", "b": int64(1)}) {
		t.Errorf("update new %v", got)
	}
}

// TestToastUnchanged updates rows whose large TOASTed values (1.3 MB of
// text and of jsonb) are untouched. With REPLICA IDENTITY DEFAULT they are
// absent from New (not null) and listed in Unchanged; with FULL, New carries
// them from the old row and Unchanged still lists them.
func TestToastUnchanged(t *testing.T) {
	t.Parallel()
	for _, identity := range []string{"DEFAULT", "FULL"} {
		t.Run(identity, func(t *testing.T) {
			t.Parallel()
			db := testenv.NewEmptyDB(t)
			db.Exec(t, `CREATE TABLE docs (id int PRIMARY KEY, title text, body text, meta jsonb);
				ALTER TABLE docs REPLICA IDENTITY `+identity)
			cfg := testConfig(t, db, "public.docs")
			r := start(t, cfg, true)

			body := incompressible(t, 1300_000)
			meta := `{"blob": "` + incompressible(t, 1300_000) + `", "n": 1}`
			db.Exec(t, `INSERT INTO docs VALUES (1, 'a', $1, $2)`, body, meta)
			db.Exec(t, `UPDATE docs SET title = 'b' WHERE id = 1`)
			db.Exec(t, `UPDATE docs SET body = 'small', title = 'c' WHERE id = 1`)
			changes := flatten(r.sink.waitTransactions(t, 3))

			ins := changes[0]
			if ins.New["body"] != body || !sameJSON(t, ins.New["meta"], meta) || ins.Unchanged != nil {
				t.Errorf("insert: body of %d bytes, unchanged %v", len(fmt.Sprint(ins.New["body"])), ins.Unchanged)
			}
			upd := changes[1]
			if !reflect.DeepEqual(upd.Unchanged, []string{"body", "meta"}) || upd.New["title"] != "b" || upd.New["id"] != int64(1) {
				t.Errorf("update: title %v unchanged %v", upd.New["title"], upd.Unchanged)
			}
			if identity == "FULL" {
				if upd.New["body"] != body || !sameJSON(t, upd.New["meta"], meta) || len(upd.New) != 4 {
					t.Errorf("FULL update: new is not the whole row (%d columns, body of %d bytes)", len(upd.New), len(fmt.Sprint(upd.New["body"])))
				}
			} else {
				for _, col := range []string{"body", "meta"} {
					if v, ok := upd.New[col]; ok {
						t.Errorf("DEFAULT update: unchanged TOASTed %s present in New: %.40v", col, v)
					}
				}
			}
			second := changes[2]
			if second.New["body"] != "small" || second.New["title"] != "c" {
				t.Errorf("second update: title %v body %.40v", second.New["title"], second.New["body"])
			}
			if identity == "FULL" && (!sameJSON(t, second.New["meta"], meta) || !reflect.DeepEqual(second.Unchanged, []string{"meta"})) {
				t.Errorf("FULL second update: unchanged %v, meta present %v", second.Unchanged, second.New["meta"] != nil)
			}
		})
	}
}

// incompressible returns n hex digits that Postgres cannot compress below
// the TOAST threshold, so the value is stored out of line.
func incompressible(t *testing.T, n int) string {
	t.Helper()
	raw := make([]byte, n/2)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(raw)
}

// sameJSON reports whether a decoded json/jsonb value equals the document want.
func sameJSON(t *testing.T, got any, want string) bool {
	t.Helper()
	raw, ok := got.(json.RawMessage)
	if !ok {
		return false
	}
	var a, b any
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(want), &b); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(a, b)
}

// TestLargeTransaction checks a 100,000-row transaction arrives whole, in
// pieces of at most 1,000 changes.
func TestLargeTransaction(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	cfg := testConfig(t, db, "public.contacts")
	r := start(t, cfg, true)
	const rows = 100_000
	db.Exec(t, `INSERT INTO contacts (organization_id, first_name) SELECT i % 10, 'n' || i FROM generate_series(1, $1) i`, rows)
	txns := r.sink.waitTransactions(t, rows/1000)
	if len(txns) != rows/1000 || txns[len(txns)-1].More || txns[len(txns)-1].EndLSN == 0 {
		t.Fatalf("want %d pieces of 1,000 changes, the last one ending the transaction; got %d", rows/1000, len(txns))
	}
	for i, c := range flatten(txns) {
		if c.Position != i || c.New["first_name"] != "n"+strconv.Itoa(i+1) {
			t.Fatalf("change %d: position %d, new %v", i, c.Position, c.New)
		}
	}
}

// TestAlterTableMidStream adds a column while streaming: the new Relation
// message must be picked up.
func TestAlterTableMidStream(t *testing.T) {
	t.Parallel()
	db := testenv.NewEmptyDB(t)
	db.Exec(t, `CREATE TABLE items (id int PRIMARY KEY, name text)`)
	cfg := testConfig(t, db, "public.items")
	r := start(t, cfg, true)
	db.Exec(t, `INSERT INTO items VALUES (1, 'a')`)
	r.sink.waitTransactions(t, 1)
	db.Exec(t, `ALTER TABLE items ADD COLUMN price numeric; ALTER TABLE items ALTER COLUMN name TYPE int USING 0`)
	db.Exec(t, `INSERT INTO items VALUES (2, 5, 9.99)`)
	changes := flatten(r.sink.waitTransactions(t, 2))
	c := changes[1]
	if !reflect.DeepEqual(c.Columns, []string{"id", "name", "price"}) {
		t.Errorf("columns after ALTER: %v", c.Columns)
	}
	if c.New["price"] == nil || c.New["price"].(interface{ String() string }).String() != "9.99" || c.New["name"] != int64(5) {
		t.Errorf("row after ALTER: %#v", c.New)
	}
}
