package cdc

import (
	"encoding/binary"
	"reflect"
	"slices"
	"testing"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgtype"
)

// fuzzRelID is the relation the fuzzed row changes refer to.
const fuzzRelID = 16384

// fuzzRelations is a relation of three text columns, id being the key,
// built the way a Relation message builds one.
func fuzzRelations() map[uint32]*relation {
	m := &pglogrepl.RelationMessage{
		RelationID: fuzzRelID, Namespace: "public", RelationName: "contacts", ReplicaIdentity: 'd',
		Columns: []*pglogrepl.RelationMessageColumn{
			{Flags: 1, Name: "id", DataType: pgtype.TextOID},
			{Name: "name", DataType: pgtype.TextOID},
			{Name: "note", DataType: pgtype.TextOID},
		},
	}
	return map[uint32]*relation{fuzzRelID: newRelation(m, newTypeDecoders())}
}

// tupleBytes encodes a pgoutput TupleData: each column is nil (null), "\x00u"
// (unchanged TOAST) or its text.
func tupleBytes(cols ...any) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(cols)))
	for _, c := range cols {
		switch c {
		case nil:
			b = append(b, 'n')
		case "\x00u":
			b = append(b, 'u')
		default:
			s := c.(string)
			b = append(b, 't')
			b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
			b = append(b, s...)
		}
	}
	return b
}

// rowMessage is an Insert, Update or Delete message without its type byte:
// the relation id, then tags and tuples.
func rowMessage(parts ...any) []byte {
	b := binary.BigEndian.AppendUint32(nil, fuzzRelID)
	for _, p := range parts {
		switch p := p.(type) {
		case byte:
			b = append(b, p)
		case []byte:
			b = append(b, p...)
		}
	}
	return b
}

// FuzzRowChange checks the tuple decoding of relation.go against
// pglogrepl's parser: it never panics, whatever the bytes (truncated
// messages included); what pglogrepl parses as a valid change of the
// relation, rowChange decodes to the same values; and what rowChange
// decodes, pglogrepl parses alike. `go test` runs the seed corpus; run
// `go test -fuzz FuzzRowChange ./cdc/` to search further.
func FuzzRowChange(f *testing.F) {
	seeds := []struct {
		kind byte
		msg  []byte
	}{
		{'I', rowMessage(byte('N'), tupleBytes("1", "Ada", nil))},
		{'I', rowMessage(byte('N'), tupleBytes("2", "Crème brûlée ☕", "\x00u"))},
		{'I', rowMessage(byte('N'), tupleBytes())},
		{'U', rowMessage(byte('N'), tupleBytes("1", "Grace", "x"))},
		{'U', rowMessage(byte('K'), tupleBytes("1", nil, nil), byte('N'), tupleBytes("7", "Ada", "\x00u"))},
		{'U', rowMessage(byte('O'), tupleBytes("1", "Ada", "old"), byte('N'), tupleBytes("1", "Ada", "new"))},
		{'U', rowMessage(byte('O'), tupleBytes("1", "Ada", "big"), byte('N'), tupleBytes("1", "Grace", "\x00u"))},
		{'D', rowMessage(byte('K'), tupleBytes("1", nil, nil))},
		{'D', rowMessage(byte('O'), tupleBytes("1", "Ada", ""))},
		{'I', rowMessage(byte('N'), tupleBytes("1", "a", "b", "one column too many"))},
		{'U', rowMessage(byte('K'), tupleBytes("1", nil, nil), byte('X'), tupleBytes("1", "a", "b"))},
		{'I', rowMessage(byte('N'), []byte{0, 1, 't', 0xff, 0xff, 0xff, 0xff, 'x'})},
		{'I', rowMessage(byte('N'), []byte{0, 1, 'z'})},
		{'D', rowMessage(byte('N'), tupleBytes("1"))},
	}
	for _, s := range seeds {
		// Every truncation of every seed, too.
		for n := 0; n <= len(s.msg); n++ {
			f.Add(s.kind, s.msg[:n])
		}
	}
	f.Fuzz(func(t *testing.T, kind byte, msg []byte) {
		if kind != 'I' && kind != 'U' && kind != 'D' {
			kind = "IUD"[int(kind)%3]
		}
		rels := fuzzRelations()
		got, err := rowChange(kind, msg, rels) // must not panic
		parsed, perr := parsePglogrepl(kind, msg)
		if err == nil {
			if perr != nil {
				// pglogrepl wants a few bytes more than an empty tuple
				// needs; anything longer it must read as we did.
				if len(msg) >= 8 {
					t.Fatalf("rowChange decoded %+v; pglogrepl: %v", got, perr)
				}
				return
			}
			if want := expectedChange(t, rels[fuzzRelID], parsed); !reflect.DeepEqual(got, want) {
				t.Fatalf("rowChange = %+v\npglogrepl reads %+v", got, want)
			}
			return
		}
		if perr == nil && decodable(rels[fuzzRelID], parsed, msg) {
			t.Fatalf("rowChange failed (%v) on a message pglogrepl parses: %+v", err, parsed)
		}
	})
}

// parsePglogrepl runs pglogrepl.Parse on a row change message. pglogrepl
// reads past the end of a truncated message (it panics, or allocates what
// a corrupt length says), so it only gets messages whose every part is
// there; the others are an error here.
func parsePglogrepl(kind byte, msg []byte) (pglogrepl.Message, error) {
	if !complete(kind, msg) {
		return nil, errShortMessage
	}
	return pglogrepl.Parse(append([]byte{kind}, msg...))
}

// complete reports whether msg holds every byte pglogrepl will read,
// following its layout: relation id, tag, tuple(s); an update's old tuple
// is followed by one byte (the 'N' tag) and the new tuple.
func complete(kind byte, msg []byte) bool {
	if len(msg) < 5 {
		return false
	}
	pos, ok := 5, true
	switch tag := msg[4]; {
	case kind == 'U' && (tag == 'K' || tag == 'O'):
		if pos, ok = tupleEnd(msg, pos); !ok {
			return false
		}
		pos, ok = tupleEnd(msg, pos+1)
	case kind == 'I' || kind == 'U' || kind == 'D':
		pos, ok = tupleEnd(msg, pos)
	}
	return ok && pos <= len(msg)
}

// tupleEnd returns where the tuple at pos ends, and false if msg ends
// first.
func tupleEnd(msg []byte, pos int) (int, bool) {
	if pos+2 > len(msg) {
		return 0, false
	}
	n := int(binary.BigEndian.Uint16(msg[pos:]))
	pos += 2
	for i := 0; i < n; i++ {
		if pos+1 > len(msg) {
			return 0, false
		}
		kind := msg[pos]
		pos++
		if kind == 't' || kind == 'b' {
			if pos+4 > len(msg) {
				return 0, false
			}
			size := int(binary.BigEndian.Uint32(msg[pos:]))
			pos += 4
			if size > len(msg)-pos {
				return 0, false
			}
			pos += size
		}
	}
	return pos, true
}

// expectedChange is the Change rowChange must make of a message as
// pglogrepl parsed it.
func expectedChange(t *testing.T, rel *relation, m pglogrepl.Message) Change {
	t.Helper()
	c := Change{Schema: rel.schema, Table: rel.table, Relation: fuzzRelID, Columns: rel.names, Key: rel.key}
	switch m := m.(type) {
	case *pglogrepl.InsertMessage:
		c.Op = OpInsert
		c.New, c.Unchanged = expectedRow(rel, m.Tuple, false)
	case *pglogrepl.UpdateMessage:
		c.Op = OpUpdate
		if m.OldTuple != nil {
			c.Old, _ = expectedRow(rel, m.OldTuple, m.OldTupleType == 'K')
			c.OldFull = m.OldTupleType == 'O'
		}
		c.New, c.Unchanged = expectedRow(rel, m.NewTuple, false)
		if c.OldFull && c.New != nil {
			// With the whole old row, unchanged TOASTed values come from it.
			for _, col := range c.Unchanged {
				if v, ok := c.Old[col]; ok {
					c.New[col] = v
				}
			}
		}
	case *pglogrepl.DeleteMessage:
		c.Op = OpDelete
		c.Old, _ = expectedRow(rel, m.OldTuple, m.OldTupleType == 'K')
		c.OldFull = m.OldTupleType == 'O'
	default:
		t.Fatalf("pglogrepl parsed a %T", m)
	}
	return c
}

// expectedRow is the row and unchanged columns of a tuple as pglogrepl
// parsed it; keysOnly keeps only the key columns.
func expectedRow(rel *relation, td *pglogrepl.TupleData, keysOnly bool) (map[string]any, []string) {
	row := map[string]any{}
	var unchanged []string
	for i, col := range td.Columns {
		switch col.DataType {
		case pglogrepl.TupleDataTypeToast:
			unchanged = append(unchanged, rel.names[i])
		case pglogrepl.TupleDataTypeNull:
			if !keysOnly || rel.isKey[i] {
				row[rel.names[i]] = nil
			}
		default:
			if !keysOnly || rel.isKey[i] {
				row[rel.names[i]] = string(col.Data)
			}
		}
	}
	return row, unchanged
}

// decodable reports whether a message pglogrepl parsed is one rowChange
// must decode: of the known relation, no more columns than it has, column
// kinds pgoutput sends, and (pglogrepl does not check it) an 'N' before
// the new tuple of an update that has an old one.
func decodable(rel *relation, m pglogrepl.Message, msg []byte) bool {
	var relID uint32
	var tuples []*pglogrepl.TupleData
	switch m := m.(type) {
	case *pglogrepl.InsertMessage:
		relID, tuples = m.RelationID, []*pglogrepl.TupleData{m.Tuple}
	case *pglogrepl.UpdateMessage:
		relID, tuples = m.RelationID, []*pglogrepl.TupleData{m.OldTuple, m.NewTuple}
		if m.OldTuple != nil && msg[5+tupleLen(m.OldTuple)] != 'N' {
			return false
		}
	case *pglogrepl.DeleteMessage:
		relID, tuples = m.RelationID, []*pglogrepl.TupleData{m.OldTuple}
	default:
		return false
	}
	if relID != fuzzRelID {
		return false
	}
	for _, td := range tuples {
		if td == nil {
			continue
		}
		if int(td.ColumnNum) > len(rel.names) {
			return false
		}
		for _, c := range td.Columns {
			if !slices.Contains([]byte{'n', 'u', 't', 'b'}, c.DataType) {
				return false
			}
		}
	}
	return true
}

// tupleLen is the encoded length of a tuple pglogrepl parsed.
func tupleLen(td *pglogrepl.TupleData) int {
	n := 2
	for _, c := range td.Columns {
		n++
		if c.DataType == 't' || c.DataType == 'b' {
			n += 4 + len(c.Data)
		}
	}
	return n
}

// frames joins messages for FuzzMessage: each with a 2-byte length.
func frames(msgs ...[]byte) []byte {
	var b []byte
	for _, m := range msgs {
		b = binary.BigEndian.AppendUint16(b, uint16(len(m)))
		b = append(b, m...)
	}
	return b
}

// FuzzMessage feeds the receiver sequences of pgoutput messages of every
// kind (Begin, Relation, Type, Insert, Update, Delete, Truncate, Commit),
// whole or cut short: a message the server garbles is an error, never a
// panic.
func FuzzMessage(f *testing.F) {
	begin := []byte{'B', 0, 0, 0, 0, 1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7}
	commit := []byte{'C', 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0}
	relation := append([]byte{'R', 0, 0, 0x40, 1}, "public\x00deals\x00d\x00\x02\x01id\x00\x00\x00\x00\x19\xff\xff\xff\xff\x00stage\x00\x00\x00\x00\x19\xff\xff\xff\xff"...)
	typ := append([]byte{'Y', 0, 0, 0x40, 2}, "public\x00mood\x00"...)
	truncate := []byte{'T', 0, 0, 0, 2, 0, 0, 0, 0x40, 0, 0, 0, 0x40, 1}
	insert := append([]byte{'I'}, rowMessage(byte('N'), tupleBytes("1", "Ada", nil))...)
	update := append([]byte{'U'}, rowMessage(byte('K'), tupleBytes("1", nil, nil), byte('N'), tupleBytes("1", "x", "\x00u"))...)
	del := append([]byte{'D'}, rowMessage(byte('O'), tupleBytes("1", "Ada", "n"))...)
	for _, m := range [][]byte{begin, commit, relation, typ, truncate, insert, update, del} {
		for n := 0; n <= len(m); n++ {
			f.Add(frames(m[:n]))
		}
	}
	f.Add(frames(begin, relation, typ, insert, update, del, truncate, commit))
	f.Add(frames(begin, relation[:20], insert, commit[:9]))
	f.Add(frames([]byte{'T', 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1}))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := &receiver{
			r:         NewReader(ReaderConfig{Slot: "fuzz"}),
			types:     newTypeDecoders(),
			relations: fuzzRelations(),
			cur:       &Transaction{},
		}
		for len(data) >= 2 {
			n := int(binary.BigEndian.Uint16(data))
			data = data[2:]
			if n > len(data) {
				n = len(data)
			}
			msg := data[:n]
			data = data[n:]
			if len(msg) > 0 && msg[0] == 'R' {
				// A FULL or NOTHING identity looks the primary key up in
				// the database, which this test has not.
				var m pglogrepl.RelationMessage
				if decode(&m, "Relation", msg[1:]) == nil && (m.ReplicaIdentity == 'f' || m.ReplicaIdentity == 'n') {
					continue
				}
			}
			_ = s.message(msg) // an error is fine; a panic fails the fuzz test
		}
	})
}
