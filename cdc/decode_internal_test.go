package cdc

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
)

// TestDecodeText covers text forms the round-trip test cannot produce
// with the reader's session settings (other offsets, BC dates, explicit
// array bounds, odd delimiters) and malformed input.
func TestDecodeText(t *testing.T) {
	d := newTypeDecoders()
	d.names[99999] = "_mood"
	cases := []struct {
		oid  uint32
		in   string
		want any
	}{
		{pgtype.TimestamptzOID, "2024-03-01 12:34:56.5+02", "2024-03-01T10:34:56.5Z"},
		{pgtype.TimestamptzOID, "2024-03-01 12:34:56+05:30", "2024-03-01T07:04:56Z"},
		{pgtype.TimestamptzOID, "0044-03-15 12:00:00+00 BC", "0044-03-15 12:00:00+00 BC"},
		{pgtype.TimestamptzOID, "-infinity", "-infinity"},
		{pgtype.TimestampOID, "2024-03-01 00:00:00", "2024-03-01T00:00:00Z"},
		{pgtype.TimestampOID, "12024-03-01 00:00:00", "12024-03-01 00:00:00"},
		{pgtype.Int8OID, "-9223372036854775808", int64(-9223372036854775808)},
		{pgtype.Int4OID, "12", int64(12)},
		{pgtype.Float8OID, "-Infinity", "-Infinity"},
		{pgtype.Float4OID, "1e-45", 1e-45},
		{pgtype.NumericOID, "-0.000", json.Number("-0.000")},
		{pgtype.ByteaOID, `\x`, ""},
		{pgtype.Int4ArrayOID, "[0:1]={7,8}", []any{int64(7), int64(8)}},
		{pgtype.TextArrayOID, `{" spaced ",plain\,comma,"back\\slash"}`, []any{" spaced ", "plain,comma", `back\slash`}},
		{pgtype.TextArrayOID, `{{a},{NULL}}`, []any{[]any{"a"}, []any{nil}}},
		{pgtype.TextArrayOID, `{a,b`, `{a,b`},
		{pgtype.BoxArrayOID, `{(1,1),(0,0);(2,2),(1,1)}`, []any{"(1,1),(0,0)", "(2,2),(1,1)"}},
		{99999, `{sad,happy}`, []any{"sad", "happy"}},
		{88888, `(1,x)`, `(1,x)`},
		{pgtype.IntervalOID, "3 days", "3 days"},
	}
	for _, c := range cases {
		if got := d.forOID(c.oid)([]byte(c.in)); !reflect.DeepEqual(got, c.want) {
			t.Errorf("oid %d %q: got %#v, want %#v", c.oid, c.in, got, c.want)
		}
	}
}

// BenchmarkDecodeRow measures decoding one typical row's values.
func BenchmarkDecodeRow(b *testing.B) {
	d := newTypeDecoders()
	row := []struct {
		dec valueDecoder
		src []byte
	}{
		{d.forOID(pgtype.Int8OID), []byte("123456")},
		{d.forOID(pgtype.Int8OID), []byte("42")},
		{d.forOID(pgtype.TextOID), []byte("Ada Lovelace")},
		{d.forOID(pgtype.TextOID), []byte("ada@example.com")},
		{d.forOID(pgtype.NumericOID), []byte("1000.50")},
		{d.forOID(pgtype.BoolOID), []byte("t")},
		{d.forOID(pgtype.TimestamptzOID), []byte("2024-03-01 12:34:56.123456+00")},
		{d.forOID(pgtype.JSONBOID), []byte(`{"source": "bench", "n": 1}`)},
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, v := range row {
			_ = v.dec(v.src)
		}
	}
}
