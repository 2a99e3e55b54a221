package cdc_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/testenv"
)

// TestTableReaderChunks reads a table with a two-column key in chunks:
// every row once, in key order, decoded like the stream's values, and
// generated columns left out as pgoutput leaves them out.
func TestTableReaderChunks(t *testing.T) {
	t.Parallel()
	db := testenv.NewEmptyDB(t)
	db.Exec(t, `CREATE TABLE lines (
		tenant text, n int, amount numeric(10,2), at timestamptz, tags text[], doc jsonb,
		twice int GENERATED ALWAYS AS (n * 2) STORED,
		PRIMARY KEY (tenant, n))`)
	db.Exec(t, `INSERT INTO lines (tenant, n, amount, at, tags, doc)
		SELECT t, i, i * 1.5, '2026-01-02 03:04:05+00', ARRAY['a', 'b'], '{"k": 1}'
		FROM unnest(ARRAY['b', 'a']) t, generate_series(1, 5) i`)
	ctx := context.Background()
	tr, err := cdc.OpenTableReader(ctx, db.URL, "lines", cdc.TableReadOptions{Where: "n <> 3"})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close(ctx)
	tab := tr.Table()
	if !reflect.DeepEqual(tab.Key, []string{"tenant", "n"}) || len(tab.Columns) != 6 {
		t.Fatalf("table = %+v, want key (tenant, n) and 6 published columns", tab)
	}
	if n, exact, err := tr.Count(ctx); err != nil || n != 8 || !exact {
		t.Fatalf("Count = %d, %v, %v; want 8 exact", n, exact, err)
	}
	var got []string
	var after []string
	for {
		chunk, err := tr.Chunk(ctx, after, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(chunk.Rows) > 0 && strings.Count(chunk.Snapshot, ":") != 2 {
			t.Fatalf("snapshot %q, want xmin:xmax:xip", chunk.Snapshot)
		}
		for _, r := range chunk.Rows {
			if r.Op != cdc.OpRead || r.Old != nil {
				t.Fatalf("row %+v: want op read without old", r)
			}
			got = append(got, fmt.Sprintf("%s:%d", r.New["tenant"], r.New["n"]))
		}
		if len(chunk.Rows) < 3 {
			break
		}
		after = chunk.Last
	}
	want := []string{"a:1", "a:2", "a:4", "a:5", "b:1", "b:2", "b:4", "b:5"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rows %v, want %v", got, want)
	}
	chunk, err := tr.Chunk(ctx, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	r := chunk.Rows[0].New
	if r["amount"] != json.Number("1.50") || r["at"] != "2026-01-02T03:04:05Z" || !reflect.DeepEqual(r["tags"], []any{"a", "b"}) ||
		string(r["doc"].(json.RawMessage)) != `{"k": 1}` {
		t.Errorf("values %#v: want them decoded as the stream decodes them", r)
	}
}

func TestTableReaderErrors(t *testing.T) {
	t.Parallel()
	db := testenv.NewEmptyDB(t)
	db.Exec(t, `CREATE TABLE nokey (a int)`)
	db.Exec(t, `CREATE TABLE keyed (id int PRIMARY KEY)`)
	ctx := context.Background()
	if _, err := cdc.OpenTableReader(ctx, db.URL, "missing", cdc.TableReadOptions{}); !errors.Is(err, cdc.ErrNoTable) {
		t.Errorf("unknown table: %v, want ErrNoTable", err)
	}
	if _, err := cdc.OpenTableReader(ctx, db.URL, "nokey", cdc.TableReadOptions{}); !errors.Is(err, cdc.ErrNoPrimaryKey) {
		t.Errorf("table without key: %v, want ErrNoPrimaryKey", err)
	}
	if _, err := cdc.OpenTableReader(ctx, db.URL, "keyed", cdc.TableReadOptions{Where: "nope > 1"}); err == nil {
		t.Error("a where clause naming an unknown column was accepted")
	}
	for _, where := range []string{"false) UNION ALL (SELECT 1", "id > 1; DELETE FROM keyed", "id > 1 -- x", "id = $$1$$", "(id > 1", "name = 'x"} {
		if _, err := cdc.OpenTableReader(ctx, db.URL, "keyed", cdc.TableReadOptions{Where: where}); !errors.Is(err, cdc.ErrCondition) {
			t.Errorf("where %q: %v, want ErrCondition", where, err)
		}
	}
	tr, err := cdc.OpenTableReader(ctx, db.URL, "keyed", cdc.TableReadOptions{Where: "(id > 1 OR id::text = 'a)''b') AND \"id\" < 10"})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close(ctx)
	if err := tr.WriteMessage(ctx, "p", "x'); DROP TABLE keyed; --"); err == nil {
		t.Error("WriteMessage accepted content with quotes")
	}
}

// TestMessagesByPrefix: transactional messages of a requested prefix come
// in their transaction (also one that changed no row); others do not.
func TestMessagesByPrefix(t *testing.T) {
	t.Parallel()
	db := testenv.NewEmptyDB(t)
	db.Exec(t, `CREATE TABLE m (id int PRIMARY KEY)`)
	cfg := testConfig(t, db, "public.m")
	cfg.MessagePrefixes = []string{"walhook.test"}
	r := start(t, cfg, true)
	ctx := context.Background()
	tr, err := cdc.OpenTableReader(ctx, db.URL, "m", cdc.TableReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close(ctx)
	if err := tr.WriteMessage(ctx, "walhook.test", "low:abc"); err != nil {
		t.Fatal(err)
	}
	db.Exec(t, `SELECT pg_logical_emit_message(true, 'other', 'x')`)
	db.Exec(t, `SELECT pg_logical_emit_message(false, 'walhook.test', 'not transactional')`)
	db.Exec(t, `BEGIN; INSERT INTO m VALUES (1); SELECT pg_logical_emit_message(true, 'walhook.test', 'after one'); INSERT INTO m VALUES (2); COMMIT`)
	txns := r.sink.waitTransactions(t, 2)
	if len(txns[0].Changes) != 0 || len(txns[0].Messages) != 1 || string(txns[0].Messages[0].Content) != "low:abc" {
		t.Fatalf("first transaction %+v, want only the message low:abc", txns[0])
	}
	m := txns[1].Messages
	if len(txns[1].Changes) != 2 || len(m) != 1 || m[0].Position != 1 || string(m[0].Content) != "after one" || m[0].Prefix != "walhook.test" {
		t.Fatalf("second transaction %+v, want two changes and the message at position 1", txns[1])
	}
}

// TestTableReaderRefusesUnsafeWhere: a where clause runs as walhook's role,
// so one that could do more than filter the table's rows is refused up
// front: volatile functions and operators (they may write, wait or kill),
// other tables or views, subqueries. Immutable and stable ones pass.
func TestTableReaderRefusesUnsafeWhere(t *testing.T) {
	t.Parallel()
	db := testenv.NewEmptyDB(t)
	db.Exec(t, `CREATE TABLE keyed (id int PRIMARY KEY, name text, at timestamptz, amount numeric)`)
	db.Exec(t, `CREATE TABLE other (id int)`)
	db.Exec(t, `CREATE SEQUENCE vseq`)
	db.Exec(t, `CREATE FUNCTION writes() RETURNS int LANGUAGE sql AS 'INSERT INTO other VALUES (1) RETURNING id'`)
	db.Exec(t, `CREATE FUNCTION pure(x int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT x + 1'`)
	ctx := context.Background()
	refused := map[string]string{
		"nextval('vseq') > 0":              "nextval",
		"(select pg_sleep(6)) is not null": "subquery",
		"pg_sleep(0) is not null":          "pg_sleep",
		"random() < 0.5":                   "random",
		"writes() > 0":                     "writes",
		"id in (select id from other)":     "other",
		"(select count(*) from pg_stat_activity where pg_terminate_backend(pid)) >= 0": "pg_terminate_backend",
		"exists (select 1 from keyed k where k.id = keyed.id + 1)":                     "subquery",
	}
	for where, names := range refused {
		_, err := cdc.OpenTableReader(ctx, db.URL, "keyed", cdc.TableReadOptions{Where: where})
		if !errors.Is(err, cdc.ErrUnsafeCondition) || !strings.Contains(err.Error(), names) {
			t.Errorf("where %q: %v, want ErrUnsafeCondition naming %s", where, err, names)
		}
	}
	for _, where := range []string{
		"id > 10 AND name ILIKE 'a%'",
		"at > now() - interval '1 day'",
		"amount::text ~ '^1' OR lower(name) = 'x'",
		"pure(id) = 2 AND coalesce(name, '') <> '' AND id = ANY(ARRAY[1,2,3])",
		"date_trunc('day', at) = '2026-01-01'::timestamptz",
	} {
		tr, err := cdc.OpenTableReader(ctx, db.URL, "keyed", cdc.TableReadOptions{Where: where})
		if err != nil {
			t.Errorf("where %q refused: %v", where, err)
			continue
		}
		tr.Close(ctx)
	}
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM other`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("other has %d rows (%v): a check ran the clause's function", n, err)
	}
	if v, err := db.Pool.Query(ctx, `SELECT 1 FROM pg_class WHERE relname = 'walhook_where_check'`); err != nil {
		t.Fatal(err)
	} else if v.Next() {
		t.Fatal("the check's temporary view outlived the check")
	} else {
		v.Close()
	}
}
