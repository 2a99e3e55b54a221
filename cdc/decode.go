package cdc

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// valueDecoder turns one column value in Postgres text format into its
// JSON-faithful Go value (see Change). It must copy what it keeps: src is
// only valid until the next message is received.
type valueDecoder func(src []byte) any

// typeDecoders picks a valueDecoder per type OID (see valueType).
type typeDecoders struct {
	types *pgtype.Map
	// names holds the types announced by pgoutput Type messages (enums,
	// domains, composites and their arrays), by OID.
	names map[uint32]string
}

func newTypeDecoders() *typeDecoders {
	return &typeDecoders{types: pgtype.NewMap(), names: map[uint32]string{}}
}

// ValueKind is the JSON form the Reader gives values of a type (see Change).
type ValueKind string

// The value kinds, by the Go value Change documents for them.
const (
	KindInteger     ValueKind = "integer"     // int64 (uint64 for xid8 beyond int64)
	KindNumeric     ValueKind = "numeric"     // json.Number; "NaN", "Infinity", "-Infinity" as strings
	KindFloat       ValueKind = "float"       // float64; "NaN", "Infinity", "-Infinity" as strings
	KindBool        ValueKind = "bool"        // bool
	KindTimestamptz ValueKind = "timestamptz" // RFC 3339 string in UTC; infinity and BC as Postgres's text
	KindTimestamp   ValueKind = "timestamp"   // RFC 3339 string taken as UTC; infinity and BC as Postgres's text
	KindJSON        ValueKind = "json"        // json.RawMessage: any JSON value
	KindBytea       ValueKind = "bytea"       // base64 string
	KindArray       ValueKind = "array"       // []any of Elem values, nested when multidimensional
	KindText        ValueKind = "text"        // string: Postgres's text (text, uuid, date, enums, domains, others)
)

// ValueType says how values of one Postgres type are decoded.
type ValueType struct {
	Kind ValueKind
	// OID is the type's OID (the element type's for Elem).
	OID uint32
	// Elem is the element type of an array.
	Elem  *ValueType
	delim byte
}

// ColumnValueType is how the Reader decodes values of type oid, named
// typname in pg_type (which tells arrays of user-defined types, "_mood").
func ColumnValueType(oid uint32, typname string) ValueType {
	d := newTypeDecoders()
	if _, builtin := d.types.TypeForOID(oid); !builtin {
		d.names[oid] = typname
	}
	return d.valueType(oid)
}

// forOID returns the decoder for values of type oid.
func (d *typeDecoders) forOID(oid uint32) valueDecoder { return d.valueType(oid).decoder() }

// valueType classifies type oid: fast paths for the common scalars, pgx's
// type map to recognise arrays and their element types, and the text itself
// for everything else.
func (d *typeDecoders) valueType(oid uint32) ValueType {
	switch oid {
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID, pgtype.OIDOID, pgtype.XIDOID, pgtype.CIDOID, pgtype.XID8OID:
		return ValueType{Kind: KindInteger, OID: oid}
	case pgtype.NumericOID:
		return ValueType{Kind: KindNumeric, OID: oid}
	case pgtype.Float4OID, pgtype.Float8OID:
		return ValueType{Kind: KindFloat, OID: oid}
	case pgtype.BoolOID:
		return ValueType{Kind: KindBool, OID: oid}
	case pgtype.TimestamptzOID:
		return ValueType{Kind: KindTimestamptz, OID: oid}
	case pgtype.TimestampOID:
		return ValueType{Kind: KindTimestamp, OID: oid}
	case pgtype.JSONOID, pgtype.JSONBOID:
		return ValueType{Kind: KindJSON, OID: oid}
	case pgtype.ByteaOID:
		return ValueType{Kind: KindBytea, OID: oid}
	case pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID, pgtype.NameOID, pgtype.UUIDOID,
		pgtype.QCharOID, pgtype.UnknownOID, pgtype.DateOID:
		// date: the connection's DateStyle is ISO, so the text already is
		// 2006-01-02 (or infinity, -infinity, or a BC date, kept as text).
		return ValueType{Kind: KindText, OID: oid}
	}
	if t, ok := d.types.TypeForOID(oid); ok {
		if ac, ok := t.Codec.(*pgtype.ArrayCodec); ok && ac.ElementType != nil {
			delim := ac.Delimiter
			if delim == 0 {
				delim = ','
			}
			elem := d.valueType(ac.ElementType.OID)
			return ValueType{Kind: KindArray, OID: oid, Elem: &elem, delim: delim}
		}
		return ValueType{Kind: KindText, OID: oid}
	}
	// Arrays of user-defined types (enums, domains) are named _elem by
	// Postgres; their elements are decoded as text.
	if name, ok := d.names[oid]; ok && strings.HasPrefix(name, "_") {
		return ValueType{Kind: KindArray, OID: oid, Elem: &ValueType{Kind: KindText}, delim: ','}
	}
	return ValueType{Kind: KindText, OID: oid}
}

// decoder is the valueDecoder of values of type vt.
func (vt ValueType) decoder() valueDecoder {
	switch vt.Kind {
	case KindInteger:
		return decodeInt
	case KindNumeric:
		return decodeNumeric
	case KindFloat:
		return decodeFloat
	case KindBool:
		return decodeBool
	case KindTimestamptz:
		return decodeTimestamptz
	case KindTimestamp:
		return decodeTimestamp
	case KindJSON:
		return decodeJSON
	case KindBytea:
		return decodeBytea
	case KindArray:
		return arrayDecoder(vt.Elem.decoder(), vt.delim)
	}
	return decodeString
}

func decodeString(src []byte) any { return string(src) }

func decodeInt(src []byte) any {
	if n, ok := parseInt(src); ok {
		return n
	}
	if n, err := strconv.ParseInt(string(src), 10, 64); err == nil {
		return n
	}
	if n, err := strconv.ParseUint(string(src), 10, 64); err == nil {
		return n // xid8 beyond int64
	}
	return string(src)
}

// parseInt parses a decimal integer of at most 18 digits without allocating.
func parseInt(src []byte) (int64, bool) {
	neg := false
	if len(src) > 0 && src[0] == '-' {
		neg = true
		src = src[1:]
	}
	if len(src) == 0 || len(src) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range src {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

func decodeNumeric(src []byte) any {
	s := string(src)
	switch s {
	case "NaN", "Infinity", "-Infinity":
		return s
	}
	return json.Number(s)
}

func decodeFloat(src []byte) any {
	s := string(src)
	switch s {
	case "NaN", "Infinity", "-Infinity":
		return s
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return s
	}
	return f
}

func decodeBool(src []byte) any {
	if len(src) == 1 {
		switch src[0] {
		case 't':
			return true
		case 'f':
			return false
		}
	}
	return string(src)
}

func decodeJSON(src []byte) any {
	return json.RawMessage(append([]byte(nil), src...))
}

func decodeBytea(src []byte) any {
	if len(src) < 2 || src[0] != '\\' || src[1] != 'x' {
		return string(src) // bytea_output is hex on our connection; keep anything else as text
	}
	raw := make([]byte, hex.DecodedLen(len(src)-2))
	if _, err := hex.Decode(raw, src[2:]); err != nil {
		return string(src)
	}
	return base64.StdEncoding.EncodeToString(raw)
}

// isoDateTime reports whether src starts with "YYYY-MM-DD HH:MM:SS".
func isoDateTime(src []byte) bool {
	return len(src) >= 19 && src[4] == '-' && src[7] == '-' && src[10] == ' ' && src[13] == ':' && src[16] == ':'
}

// decodeTimestamptz renders a timestamptz as RFC 3339 in UTC with a Z,
// keeping fractional seconds. The connection's TimeZone is UTC, so the text
// is normally "2006-01-02 15:04:05.999999+00"; anything else is parsed.
// infinity, -infinity and BC timestamps stay as Postgres wrote them.
func decodeTimestamptz(src []byte) any {
	n := len(src)
	if isoDateTime(src) && n <= 29 && src[n-3] == '+' && src[n-2] == '0' && src[n-1] == '0' && validFraction(src[19:n-3]) {
		return rfc3339(src[:n-3])
	}
	s := string(src)
	for _, layout := range []string{"2006-01-02 15:04:05.999999999-07", "2006-01-02 15:04:05.999999999-07:00", "2006-01-02 15:04:05.999999999-07:00:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC().Format(time.RFC3339Nano)
		}
	}
	return s
}

// decodeTimestamp renders a timestamp without time zone as RFC 3339, taking
// it as UTC (the Z is added). infinity, -infinity and BC timestamps stay as
// Postgres wrote them.
func decodeTimestamp(src []byte) any {
	if isoDateTime(src) && len(src) <= 26 && validFraction(src[19:]) {
		return rfc3339(src)
	}
	return string(src)
}

// validFraction reports whether src is empty or "." followed by digits.
func validFraction(src []byte) bool {
	if len(src) == 0 {
		return true
	}
	if src[0] != '.' || len(src) == 1 {
		return false
	}
	for _, c := range src[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// rfc3339 turns "2006-01-02 15:04:05[.999999]" into
// "2006-01-02T15:04:05[.999999]Z". Postgres already trims trailing zeros of
// the fraction, as time.RFC3339Nano does.
func rfc3339(src []byte) string {
	var b strings.Builder
	b.Grow(len(src) + 1)
	b.Write(src[:10])
	b.WriteByte('T')
	b.Write(src[11:])
	b.WriteByte('Z')
	return b.String()
}
