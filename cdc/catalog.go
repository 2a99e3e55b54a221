package cdc

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Table is what the source database's catalog says about a table that
// rules read: what walhook needs to check rules against it and to describe
// the events it produces.
type Table struct {
	Schema, Name string
	// Identity is the replica identity: 'd'efault, 'f'ull, 'i'ndex or 'n'othing.
	Identity byte
	// Columns are the columns pgoutput sends (generated columns are not), in
	// table order.
	Columns []Column
	// Key lists the replica identity columns (the primary key by default).
	Key []string
}

// Column is one column of a Table.
type Column struct {
	Name string
	// Type is how values are decoded (see Change).
	Type ValueType
	// SQLType is the type as Postgres writes it: "numeric(12,2)", "text[]".
	SQLType string
	NotNull bool
	// Toastable reports whether large values may be stored out of line
	// (TOASTed): an update that leaves one unchanged does not send it.
	Toastable bool
	// MaxLength is n of varchar(n) and char(n); 0 otherwise.
	MaxLength int
	// Enum lists the labels of an enum type, or of an array of one, in order.
	Enum []string
}

// FullIdentity reports whether the table has REPLICA IDENTITY FULL.
func (t *Table) FullIdentity() bool { return t.Identity == 'f' }

// Column returns the named column, or nil.
func (t *Table) Column(name string) *Column {
	for i := range t.Columns {
		if t.Columns[i].Name == name {
			return &t.Columns[i]
		}
	}
	return nil
}

// ColumnNames lists the table's column names in table order.
func (t *Table) ColumnNames() []string {
	names := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		names[i] = c.Name
	}
	return names
}

// IsKey reports whether the column is a replica identity column.
func (t *Table) IsKey(name string) bool {
	for _, k := range t.Key {
		if k == name {
			return true
		}
	}
	return false
}

// LookupTable reads schema.table (an ordinary or partitioned table) from the
// catalog; nil when there is no such table.
func LookupTable(ctx context.Context, conn *pgx.Conn, schema, table string) (*Table, error) {
	const tableSQL = `
SELECT c.oid, c.relreplident::text,
       array(SELECT a.attname::text FROM pg_index i
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
             WHERE i.indrelid = c.oid
               AND CASE WHEN c.relreplident = 'i' THEN i.indisreplident ELSE i.indisprimary END
             ORDER BY array_position(i.indkey::int2[], a.attnum))
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`
	t := &Table{Schema: schema, Name: table}
	var relid uint32
	var identity string
	err := conn.QueryRow(ctx, tableSQL, schema, table).Scan(&relid, &identity, &t.Key)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the definition of %s.%s: %w", schema, table, err)
	}
	if identity != "" {
		t.Identity = identity[0]
	}
	if t.Columns, err = lookupColumns(ctx, conn, relid); err != nil {
		return nil, fmt.Errorf("reading the columns of %s.%s: %w", schema, table, err)
	}
	return t, nil
}

// lookupColumns reads the columns of relation relid that pgoutput sends.
func lookupColumns(ctx context.Context, conn *pgx.Conn, relid uint32) ([]Column, error) {
	const columnsSQL = `
SELECT a.attname::text, a.atttypid, t.typname::text, format_type(a.atttypid, a.atttypmod),
       a.attnotnull, a.attstorage <> 'p',
       CASE WHEN a.atttypid IN ('varchar'::regtype, 'bpchar'::regtype, '_varchar'::regtype, '_bpchar'::regtype)
             AND a.atttypmod > 4 THEN a.atttypmod - 4 ELSE 0 END,
       array(SELECT e.enumlabel::text FROM pg_enum e
             WHERE e.enumtypid = CASE WHEN t.typcategory = 'A' THEN t.typelem ELSE t.oid END
             ORDER BY e.enumsortorder)
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
ORDER BY a.attnum`
	rows, err := conn.Query(ctx, columnsSQL, relid)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanColumn)
}

// scanColumn scans one row of lookupColumns's query.
func scanColumn(row pgx.CollectableRow) (Column, error) {
	var c Column
	var oid uint32
	var typname string
	var maxLength int32
	if err := row.Scan(&c.Name, &oid, &typname, &c.SQLType, &c.NotNull, &c.Toastable, &maxLength, &c.Enum); err != nil {
		return Column{}, err
	}
	c.Type = ColumnValueType(oid, typname)
	c.MaxLength = int(maxLength)
	if len(c.Enum) == 0 {
		c.Enum = nil
	}
	return c, nil
}

// ServerSettings are the server settings walhook's checks read.
type ServerSettings struct {
	WALLevel string
	// Database is the database the connection is to.
	Database string
}

// LookupSettings reads the server settings of conn's server.
func LookupSettings(ctx context.Context, conn *pgx.Conn) (ServerSettings, error) {
	var s ServerSettings
	if err := conn.QueryRow(ctx, `SELECT current_setting('wal_level'), current_database()`).Scan(&s.WALLevel, &s.Database); err != nil {
		return s, fmt.Errorf("reading wal_level: %w", err)
	}
	return s, nil
}
