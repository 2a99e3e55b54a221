package cdc

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/jackc/pglogrepl"
)

// relation is what a pgoutput Relation message says about a table, with a
// decoder per column.
type relation struct {
	schema, table string
	identity      byte // replica identity: d(efault), n(othing), f(ull), i(ndex)
	names         []string
	decoders      []valueDecoder
	isKey         []bool
	key           []string
}

func newRelation(m *pglogrepl.RelationMessage, types *typeDecoders) *relation {
	r := &relation{
		schema:   m.Namespace,
		table:    m.RelationName,
		identity: m.ReplicaIdentity,
		names:    make([]string, len(m.Columns)),
		decoders: make([]valueDecoder, len(m.Columns)),
		isKey:    make([]bool, len(m.Columns)),
	}
	for i, c := range m.Columns {
		r.names[i] = c.Name
		r.decoders[i] = types.forOID(c.DataType)
		r.isKey[i] = c.Flags&1 != 0
		if r.isKey[i] {
			r.key = append(r.key, c.Name)
		}
	}
	return r
}

var errShortMessage = errors.New("pgoutput message too short")

// tupleReader reads pgoutput TupleData straight from the message buffer.
type tupleReader struct {
	src []byte
	pos int
}

func (t *tupleReader) byte() (byte, error) {
	if t.pos >= len(t.src) {
		return 0, errShortMessage
	}
	b := t.src[t.pos]
	t.pos++
	return b, nil
}

func (t *tupleReader) uint32() (uint32, error) {
	if t.pos+4 > len(t.src) {
		return 0, errShortMessage
	}
	v := binary.BigEndian.Uint32(t.src[t.pos:])
	t.pos += 4
	return v, nil
}

// tuple decodes one TupleData into a row map. With keysOnly, only the
// relation's key columns are kept (a 'K' tuple sends the others as null).
// It returns the names of unchanged TOASTed columns, which are left out.
func (t *tupleReader) tuple(rel *relation, keysOnly bool) (map[string]any, []string, error) {
	if t.pos+2 > len(t.src) {
		return nil, nil, errShortMessage
	}
	n := int(binary.BigEndian.Uint16(t.src[t.pos:]))
	t.pos += 2
	if n > len(rel.names) {
		return nil, nil, fmt.Errorf("tuple of %s.%s has %d columns, relation has %d", rel.schema, rel.table, n, len(rel.names))
	}
	row := make(map[string]any, n)
	var unchanged []string
	for i := 0; i < n; i++ {
		kind, err := t.byte()
		if err != nil {
			return nil, nil, err
		}
		switch kind {
		case pglogrepl.TupleDataTypeNull:
			if !keysOnly || rel.isKey[i] {
				row[rel.names[i]] = nil
			}
		case pglogrepl.TupleDataTypeToast:
			unchanged = append(unchanged, rel.names[i])
		case pglogrepl.TupleDataTypeText, pglogrepl.TupleDataTypeBinary:
			size, err := t.uint32()
			if err != nil {
				return nil, nil, err
			}
			end := t.pos + int(size)
			if end > len(t.src) || end < t.pos {
				return nil, nil, errShortMessage
			}
			if !keysOnly || rel.isKey[i] {
				row[rel.names[i]] = rel.decoders[i](t.src[t.pos:end])
			}
			t.pos = end
		default:
			return nil, nil, fmt.Errorf("unknown tuple column kind %q in %s.%s", kind, rel.schema, rel.table)
		}
	}
	return row, unchanged, nil
}

// rowChange decodes an Insert, Update or Delete message (protocol 1,
// without its type byte) into a Change, looking its relation up in rels.
func rowChange(kind byte, msg []byte, rels map[uint32]*relation) (Change, error) {
	t := tupleReader{src: msg}
	relID, err := t.uint32()
	if err != nil {
		return Change{}, err
	}
	rel, ok := rels[relID]
	if !ok {
		return Change{}, fmt.Errorf("change for relation %d before its Relation message", relID)
	}
	c := Change{
		Schema:   rel.schema,
		Table:    rel.table,
		Relation: relID,
		Columns:  rel.names,
		Key:      rel.key,
		OldFull:  rel.identity == 'f',
	}
	tag, err := t.byte()
	if err != nil {
		return Change{}, err
	}
	switch kind {
	case 'I':
		c.Op = OpInsert
		if tag != 'N' {
			return Change{}, fmt.Errorf("insert into %s.%s: unexpected tuple tag %q", rel.schema, rel.table, tag)
		}
		c.New, c.Unchanged, err = t.tuple(rel, false)
	case 'U':
		c.Op = OpUpdate
		if tag == 'K' || tag == 'O' {
			if c.Old, _, err = t.tuple(rel, tag == 'K'); err != nil {
				return Change{}, err
			}
			c.OldFull = tag == 'O'
			if tag, err = t.byte(); err != nil {
				return Change{}, err
			}
		}
		if tag != 'N' {
			return Change{}, fmt.Errorf("update of %s.%s: unexpected tuple tag %q", rel.schema, rel.table, tag)
		}
		if c.New, c.Unchanged, err = t.tuple(rel, false); err == nil && c.OldFull {
			fillUnchanged(&c)
		}
	case 'D':
		c.Op = OpDelete
		if tag != 'K' && tag != 'O' {
			return Change{}, fmt.Errorf("delete from %s.%s: unexpected tuple tag %q", rel.schema, rel.table, tag)
		}
		c.OldFull = tag == 'O'
		c.Old, _, err = t.tuple(rel, tag == 'K')
	}
	if err != nil {
		return Change{}, fmt.Errorf("decoding %s of %s.%s: %w", c.Op, rel.schema, rel.table, err)
	}
	return c, nil
}

// fillUnchanged copies the unchanged TOASTed columns of an update into New
// from the whole old row (REPLICA IDENTITY FULL), so New is the whole row.
// Unchanged keeps naming them: they were not changed by the update.
func fillUnchanged(c *Change) {
	for _, col := range c.Unchanged {
		if v, ok := c.Old[col]; ok {
			c.New[col] = v
		}
	}
}
