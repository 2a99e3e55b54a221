package cdc_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/walhook/walhook/testenv"
)

// TestValuesRoundTrip inserts one row holding every supported type and
// compares each decoded value exactly.
func TestValuesRoundTrip(t *testing.T) {
	t.Parallel()
	db := testenv.NewEmptyDB(t)
	db.Exec(t, `CREATE TYPE mood AS ENUM ('sad', 'happy');
		CREATE TABLE alltypes (
			id int PRIMARY KEY,
			i2 smallint, i4 int, i8 bigint, i8max bigint,
			num numeric, num_scaled numeric(12,2), num_nan numeric,
			f4 real, f8 double precision, f8_nan double precision, f8_inf double precision, f8_neginf double precision,
			b_true bool, b_false bool,
			t text, vc varchar(10), ch char(3), nm name, u uuid, e mood,
			tstz timestamptz, tstz0 timestamptz, tstz_inf timestamptz,
			ts timestamp, ts_neginf timestamp, d date, d_inf date,
			j json, jb jsonb, by bytea, by_empty bytea,
			a_int int[], a_text text[], a_num numeric[], a_jsonb jsonb[], a_2d int[], a_enum mood[], a_empty int[], a_tstz timestamptz[],
			iv interval, ip inet, tm time,
			nul text
		)`)
	cfg := testConfig(t, db, "public.alltypes")
	r := start(t, cfg, true)

	db.Exec(t, `SET TimeZone = 'Europe/Berlin';
		INSERT INTO alltypes VALUES (
			1,
			-32768, 2147483647, -9000000000, 9223372036854775807,
			'12345678901234567890.123456789', 42.5, 'NaN',
			1.1, 3.141592653589793, 'NaN', 'Infinity', '-Infinity',
			true, false,
			'héllo "world"', 'short', 'ab', 'a_name', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'happy',
			'2024-03-01 12:34:56.123456+02', '2024-01-01 00:00:00+00', 'infinity',
			'2024-03-01 12:34:56.5', '-infinity', '2024-02-29', 'infinity',
			'{"a": 1,  "b": [true, null]}', '{"b": [true, null], "a": 1}', '\x0001ff', '',
			'{1,NULL,3}', '{"a b","c,d",NULL,"NULL","q\"x"}', '{1.50,NaN}', ARRAY['{"k": 1}'::jsonb, '[1, 2]'::jsonb],
			'{{1,2},{3,4}}', '{sad,happy}', '{}', '{"2024-03-01 12:00:00+00"}',
			'1 day 02:00:00', '10.0.0.1/8', '13:14:15',
			NULL
		)`)

	txns := r.sink.waitTransactions(t, 1)
	if len(txns) != 1 || len(txns[0].Changes) != 1 {
		t.Fatalf("want 1 transaction with 1 change, got %+v", txns)
	}
	got := txns[0].Changes[0].New
	want := map[string]any{
		"id": int64(1),
		"i2": int64(-32768), "i4": int64(2147483647), "i8": int64(-9000000000), "i8max": int64(9223372036854775807),
		"num": json.Number("12345678901234567890.123456789"), "num_scaled": json.Number("42.50"), "num_nan": "NaN",
		"f4": 1.1, "f8": 3.141592653589793, "f8_nan": "NaN", "f8_inf": "Infinity", "f8_neginf": "-Infinity",
		"b_true": true, "b_false": false,
		"t": `héllo "world"`, "vc": "short", "ch": "ab ", "nm": "a_name", "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "e": "happy",
		"tstz": "2024-03-01T10:34:56.123456Z", "tstz0": "2024-01-01T00:00:00Z", "tstz_inf": "infinity",
		"ts": "2024-03-01T12:34:56.5Z", "ts_neginf": "-infinity", "d": "2024-02-29", "d_inf": "infinity",
		"j":        json.RawMessage(`{"a": 1,  "b": [true, null]}`),
		"jb":       json.RawMessage(`{"a": 1, "b": [true, null]}`),
		"by":       "AAH/",
		"by_empty": "",
		"a_int":    []any{int64(1), nil, int64(3)},
		"a_text":   []any{"a b", "c,d", nil, "NULL", `q"x`},
		"a_num":    []any{json.Number("1.50"), "NaN"},
		"a_jsonb":  []any{json.RawMessage(`{"k": 1}`), json.RawMessage(`[1, 2]`)},
		"a_2d":     []any{[]any{int64(1), int64(2)}, []any{int64(3), int64(4)}},
		"a_enum":   []any{"sad", "happy"},
		"a_empty":  []any{},
		"a_tstz":   []any{"2024-03-01T12:00:00Z"},
		"iv":       "1 day 02:00:00", "ip": "10.0.0.1/8", "tm": "13:14:15",
		"nul": nil,
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s: missing", k)
			continue
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s: got %#v (%T), want %#v (%T)", k, g, g, w, w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected column %s = %#v", k, got[k])
		}
	}
	if _, err := json.Marshal(got); err != nil {
		t.Errorf("decoded row does not marshal to JSON: %v", err)
	}
}
