package outbox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/walhook/walhook/cdc"
)

// querier runs catalog queries (a pool, never the claim transaction, which
// an error would abort).
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// tableInfo is what the catalog says about a table whose changes the
// triggers capture: what the Reader learns from a pgoutput Relation.
type tableInfo struct {
	columns  []string
	oids     []uint32
	types    []string // type names, for enums, domains and their arrays
	key      []string // Change.Key, as the Reader sets it
	identity byte     // relreplident: d, n, f or i
	inIdent  []bool   // column is in the replica identity (d: primary key, i: index)
}

// captured is the payload of a ChangeType row.
type captured struct {
	Schema string  `json:"schema"`
	Table  string  `json:"table"`
	Op     cdc.Op  `json:"op"`
	XID    int64   `json:"xid"`
	New    *string `json:"new"`
	Old    *string `json:"old"`
}

// changeDecoder turns ChangeType rows back into cdc.Change values. It
// caches table descriptions; it is not safe for concurrent use.
type changeDecoder struct {
	text   *cdc.TextDecoder
	tables map[string]*tableInfo
}

func newChangeDecoder() *changeDecoder {
	return &changeDecoder{text: cdc.NewTextDecoder(), tables: map[string]*tableInfo{}}
}

// decode returns the change a ChangeType row holds. Its errors do not
// name the row: the failed evaluation made of them does. Values are decoded as
// the Reader decodes pgoutput's; Old follows the table's replica identity
// as pgoutput would (whole row with FULL, key columns on delete and on an
// update that changed the key otherwise).
func (d *changeDecoder) decode(ctx context.Context, q querier, row *Row) (*cdc.Change, error) {
	var p captured
	if err := json.Unmarshal(row.Payload, &p); err != nil {
		return nil, fmt.Errorf("reading the captured change: %w", err)
	}
	if !p.Op.Valid() || p.Schema == "" || p.Table == "" {
		return nil, fmt.Errorf("it is not a captured change (schema, table and op are required)")
	}
	var newFields, oldFields [][]byte
	var err error
	if p.New != nil {
		if newFields, err = parseRecord(*p.New); err != nil {
			return nil, fmt.Errorf("captured new row: %w", err)
		}
	}
	if p.Old != nil {
		if oldFields, err = parseRecord(*p.Old); err != nil {
			return nil, fmt.Errorf("captured old row: %w", err)
		}
	}
	name := p.Schema + "." + p.Table
	info := d.tables[name]
	fits := func(info *tableInfo) bool {
		return info != nil && (newFields == nil || len(newFields) == len(info.columns)) &&
			(oldFields == nil || len(oldFields) == len(info.columns))
	}
	if !fits(info) { // unknown, or the table changed since it was read
		if info, err = lookupTable(ctx, q, p.Schema, p.Table); err != nil {
			return nil, err
		}
		for i, oid := range info.oids {
			d.text.AddType(oid, info.types[i])
		}
		d.tables[name] = info
		if !fits(info) {
			return nil, fmt.Errorf("the captured row of %s does not match the table's %d columns", name, len(info.columns))
		}
	}
	c := &cdc.Change{
		Schema: p.Schema, Table: p.Table, Op: p.Op,
		Columns: info.columns, Key: info.key, OldFull: info.identity == 'f',
		XID: uint32(p.XID), CommitTime: row.CreatedAt,
	}
	if newFields != nil {
		c.New = d.row(info, newFields, false)
	}
	if oldFields == nil {
		return c, nil
	}
	switch {
	case info.identity == 'f':
		c.Old = d.row(info, oldFields, false)
	case info.identity == 'n':
	case p.Op == cdc.OpDelete:
		c.Old = d.row(info, oldFields, true)
	case p.Op == cdc.OpUpdate && identityChanged(info, oldFields, newFields):
		c.Old = d.row(info, oldFields, true)
	}
	return c, nil
}

// row decodes a record's fields; keysOnly keeps the identity columns.
func (d *changeDecoder) row(info *tableInfo, fields [][]byte, keysOnly bool) map[string]any {
	row := make(map[string]any, len(fields))
	for i, f := range fields {
		if keysOnly && !info.inIdent[i] {
			continue
		}
		if f == nil {
			row[info.columns[i]] = nil
		} else {
			row[info.columns[i]] = d.text.Decode(info.oids[i], f)
		}
	}
	return row
}

func identityChanged(info *tableInfo, old, new [][]byte) bool {
	for i, in := range info.inIdent {
		if in && ((old[i] == nil) != (new[i] == nil) || !bytes.Equal(old[i], new[i])) {
			return true
		}
	}
	return false
}

// lookupTable reads a table's columns, types, primary key and replica
// identity from the catalog.
func lookupTable(ctx context.Context, q querier, schema, table string) (*tableInfo, error) {
	name := pgx.Identifier{schema, table}.Sanitize()
	rows, err := q.Query(ctx, `SELECT a.attname, a.atttypid, t.typname
		FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
		WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY a.attnum`, name)
	if err != nil {
		return nil, fmt.Errorf("reading the columns of %s: %w", name, err)
	}
	info := &tableInfo{}
	for rows.Next() {
		var col, typ string
		var oid uint32
		if err := rows.Scan(&col, &oid, &typ); err != nil {
			rows.Close()
			return nil, fmt.Errorf("reading the columns of %s: %w", name, err)
		}
		info.columns = append(info.columns, col)
		info.oids = append(info.oids, oid)
		info.types = append(info.types, typ)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the columns of %s: %w", name, err)
	}
	var ident string
	var pk, idx []string
	err = q.QueryRow(ctx, `SELECT c.relreplident::text,
		coalesce((SELECT array_agg(a.attname ORDER BY array_position(i.indkey::int2[], a.attnum))
			FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
			WHERE i.indrelid = c.oid AND i.indisprimary), '{}'),
		coalesce((SELECT array_agg(a.attname ORDER BY array_position(i.indkey::int2[], a.attnum))
			FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
			WHERE i.indrelid = c.oid AND i.indisreplident), '{}')
		FROM pg_class c WHERE c.oid = $1::regclass`, name).Scan(&ident, &pk, &idx)
	if err != nil {
		return nil, fmt.Errorf("reading the key of %s: %w", name, err)
	}
	info.identity = ident[0]
	identCols := pk
	if info.identity == 'i' {
		identCols = idx
	}
	info.inIdent = make([]bool, len(info.columns))
	var flagged []string // in column order, as pgoutput flags them
	for i, col := range info.columns {
		for _, k := range identCols {
			if k == col {
				info.inIdent[i] = true
				flagged = append(flagged, col)
			}
		}
	}
	// As the Reader: the identity columns, but the primary key under FULL
	// and NOTHING (where every or no column is flagged).
	switch info.identity {
	case 'd', 'i':
		info.key = flagged
	case 'f':
		info.key = pk
		if len(pk) == 0 {
			info.key = info.columns
		}
	case 'n':
		info.key = pk
	}
	return info, nil
}
