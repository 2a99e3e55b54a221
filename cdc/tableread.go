package cdc

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Errors of OpenTableReader that describe the table, not the connection.
var (
	ErrNoTable      = errors.New("no such table")
	ErrNoPrimaryKey = errors.New("table has no primary key")
)

// ReadTable describes a table a TableReader reads.
type ReadTable struct {
	Schema, Name string
	// Columns are the columns pgoutput publishes (not generated ones), in
	// table order.
	Columns []string
	// Key lists the primary key columns in key order.
	Key []string
	// keyTypes are the key columns' types as SQL (format_type).
	keyTypes []string
}

// TableReadOptions bound what a TableReader asks of the database.
type TableReadOptions struct {
	// Where, when set, is an SQL condition the rows must meet.
	Where string
	// StatementTimeout and LockTimeout apply to every query; defaults 5s
	// and 1s.
	StatementTimeout time.Duration
	LockTimeout      time.Duration
}

// TableReader reads a table's rows in primary key order, a chunk at a time,
// as Changes with Op read whose values are decoded exactly like the
// stream's (same text formatting settings, same decoders). It also writes
// the logical decoding messages a backfill interleaves with its reads. It
// is not safe for concurrent use.
type TableReader struct {
	conn  *pgconn.PgConn
	table ReadTable
	where string
	types *typeDecoders
	query string // the chunk query after a key
	first string // the chunk query of the first chunk
}

// OpenTableReader connects to url, describes table ("schema.table" or
// "table" in public) and checks where (see checkWhere). Errors wrap
// ErrNoTable and ErrNoPrimaryKey when the table is the problem, and
// ErrCondition or ErrUnsafeCondition when the clause is.
func OpenTableReader(ctx context.Context, url, table string, opts TableReadOptions) (*TableReader, error) {
	schema, name, err := splitTable(table)
	if err != nil {
		return nil, err
	}
	if opts.StatementTimeout <= 0 {
		opts.StatementTimeout = 5 * time.Second
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = time.Second
	}
	cfg, err := pgconn.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parsing the source database URL: %w", err)
	}
	for k, v := range replicationParams {
		if k != "replication" {
			cfg.RuntimeParams[k] = v
		}
	}
	cfg.RuntimeParams["application_name"] = "walhook-backfill"
	cfg.RuntimeParams["statement_timeout"] = fmt.Sprint(opts.StatementTimeout.Milliseconds())
	cfg.RuntimeParams["lock_timeout"] = fmt.Sprint(opts.LockTimeout.Milliseconds())
	// The where clause is the caller's SQL: it runs read-only.
	cfg.RuntimeParams["default_transaction_read_only"] = "on"
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to the source database: %w", err)
	}
	tr := &TableReader{conn: conn, where: strings.TrimSpace(opts.Where), types: newTypeDecoders()}
	if err := checkCondition(tr.where); err != nil {
		tr.Close(ctx)
		return nil, err
	}
	if err := tr.describe(ctx, schema, name); err != nil {
		tr.Close(ctx)
		return nil, err
	}
	tr.buildQueries()
	if tr.where != "" {
		if err := tr.checkWhere(ctx); err != nil {
			tr.Close(ctx)
			return nil, err
		}
	}
	return tr, nil
}

// ErrCondition is a where clause that is not one SQL condition.
var ErrCondition = errors.New("the where clause must be one SQL condition")

// checkCondition refuses a where clause that could end the condition it is
// put in: a closing parenthesis without its opening one, a semicolon, a
// comment or a dollar sign outside quotes. (It also runs read-only.)
func checkCondition(where string) error {
	depth := 0
	for i := 0; i < len(where); i++ {
		switch c := where[i]; c {
		case '\'', '"':
			end := strings.IndexByte(where[i+1:], c)
			if end < 0 {
				return fmt.Errorf("%w: unterminated %c quote", ErrCondition, c)
			}
			i += end + 1 // a doubled quote is two quoted runs in a row
		case '(':
			depth++
		case ')':
			if depth--; depth < 0 {
				return fmt.Errorf("%w: unbalanced parentheses", ErrCondition)
			}
		case ';', '$':
			return fmt.Errorf("%w: %q is not allowed outside quotes", ErrCondition, c)
		case '-', '/':
			if i+1 < len(where) && (where[i:i+2] == "--" || where[i:i+2] == "/*") {
				return fmt.Errorf("%w: comments are not allowed", ErrCondition)
			}
		}
	}
	if depth != 0 {
		return fmt.Errorf("%w: unbalanced parentheses", ErrCondition)
	}
	return nil
}

// Table describes the table read.
func (tr *TableReader) Table() ReadTable { return tr.table }

// Close closes the connection.
func (tr *TableReader) Close(ctx context.Context) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = tr.conn.Close(cctx)
}

func (tr *TableReader) qualified() string {
	return pgx.Identifier{tr.table.Schema, tr.table.Name}.Sanitize()
}

// describe reads the table's published columns and primary key.
func (tr *TableReader) describe(ctx context.Context, schema, name string) error {
	full := pgx.Identifier{schema, name}.Sanitize()
	res := tr.conn.ExecParams(ctx, `SELECT a.attname, format_type(a.atttypid, a.atttypmod),
			coalesce((SELECT k.ord FROM unnest(i.indkey) WITH ORDINALITY k(attnum, ord) WHERE k.attnum = a.attnum), 0)
		FROM pg_attribute a
		LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
		WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
		ORDER BY a.attnum`, [][]byte{[]byte(full)}, nil, nil, nil).Read()
	if res.Err != nil {
		return fmt.Errorf("describing table %s.%s: %w", schema, name, res.Err)
	}
	if len(res.Rows) == 0 {
		return fmt.Errorf("table %s.%s: %w", schema, name, ErrNoTable)
	}
	t := ReadTable{Schema: schema, Name: name}
	type keyCol struct {
		name, typ string
		pos       int
	}
	var key []keyCol
	for _, row := range res.Rows {
		col := string(row[0])
		t.Columns = append(t.Columns, col)
		if pos := string(row[2]); pos != "0" {
			var n int
			_, _ = fmt.Sscan(pos, &n)
			key = append(key, keyCol{col, string(row[1]), n})
		}
	}
	if len(key) == 0 {
		return fmt.Errorf("table %s.%s: %w: a backfill reads rows in primary key order (add one with ALTER TABLE %s ADD PRIMARY KEY (...))",
			schema, name, ErrNoPrimaryKey, full)
	}
	for i := range key { // insertion sort by key position: keys are short
		for j := i; j > 0 && key[j].pos < key[j-1].pos; j-- {
			key[j], key[j-1] = key[j-1], key[j]
		}
	}
	for _, k := range key {
		t.Key = append(t.Key, k.name)
		t.keyTypes = append(t.keyTypes, k.typ)
	}
	tr.table = t
	return nil
}

// buildQueries prepares the chunk queries: the published columns, then the
// key columns as text, keyset-paginated in key order.
func (tr *TableReader) buildQueries() {
	t := tr.table
	cols := make([]string, 0, len(t.Columns)+len(t.Key))
	for _, c := range t.Columns {
		cols = append(cols, pgx.Identifier{c}.Sanitize())
	}
	keys := make([]string, len(t.Key))
	params := make([]string, len(t.Key))
	for i, k := range t.Key {
		keys[i] = pgx.Identifier{k}.Sanitize()
		params[i] = fmt.Sprintf("$%d::%s", i+1, t.keyTypes[i])
		cols = append(cols, keys[i]+"::text AS "+pgx.Identifier{fmt.Sprintf("walhook key %d", i+1)}.Sanitize())
	}
	// The statement's snapshot: which transactions the rows could see.
	cols = append(cols, "pg_current_snapshot()::text")
	base := "SELECT " + strings.Join(cols, ", ") + " FROM " + tr.qualified()
	order := " ORDER BY " + strings.Join(keys, ", ") + fmt.Sprintf(" LIMIT $%d::int", len(keys)+1)
	after := "(" + strings.Join(keys, ", ") + ") > (" + strings.Join(params, ", ") + ")"
	if tr.where != "" {
		tr.first = base + " WHERE (" + tr.where + ")" + order
		tr.query = base + " WHERE " + after + " AND (" + tr.where + ")" + order
	} else {
		tr.first = base + order
		tr.query = base + " WHERE " + after + order
	}
	// The first query's only parameter is the limit: renumber it.
	tr.first = strings.Replace(tr.first, fmt.Sprintf("$%d::int", len(keys)+1), "$1::int", 1)
}

// Count counts the rows to read. When counting exceeds the statement
// timeout it returns the planner's estimate with exact false.
func (tr *TableReader) Count(ctx context.Context) (n int64, exact bool, err error) {
	q := "SELECT count(*) FROM " + tr.qualified()
	if tr.where != "" {
		q += " WHERE (" + tr.where + ")"
	}
	res := tr.conn.ExecParams(ctx, q, nil, nil, nil, nil).Read()
	if res.Err == nil && len(res.Rows) == 1 {
		_, err := fmt.Sscan(string(res.Rows[0][0]), &n)
		return n, true, err
	}
	var pgErr *pgconn.PgError
	if !errors.As(res.Err, &pgErr) || pgErr.Code != "57014" {
		return 0, false, fmt.Errorf("counting the rows of %s: %w", tr.qualified(), res.Err)
	}
	res = tr.conn.ExecParams(ctx, `SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = to_regclass($1)`,
		[][]byte{[]byte(tr.qualified())}, nil, nil, nil).Read()
	if res.Err != nil || len(res.Rows) != 1 {
		return 0, false, fmt.Errorf("estimating the rows of %s: %w", tr.qualified(), res.Err)
	}
	_, err = fmt.Sscan(string(res.Rows[0][0]), &n)
	return n, false, err
}

// Chunk is one chunk of rows read by a TableReader.
type Chunk struct {
	// Rows are the rows read, in key order, as Changes with Op read.
	Rows []Change
	// Last is the text form of the last row's key, to pass as after for
	// the next chunk; nil when no row was read.
	Last []string
	// Snapshot is the read's snapshot (pg_current_snapshot() as text,
	// "xmin:xmax:xip,..."); empty when no row was read.
	Snapshot string
}

// Chunk reads at most limit rows whose key follows after (nil: from the
// start), in key order.
func (tr *TableReader) Chunk(ctx context.Context, after []string, limit int) (Chunk, error) {
	q, params := tr.first, make([][]byte, 0, len(after)+1)
	if after != nil {
		if len(after) != len(tr.table.Key) {
			return Chunk{}, fmt.Errorf("reading %s: the cursor has %d key values, the key %d columns", tr.qualified(), len(after), len(tr.table.Key))
		}
		q = tr.query
		for _, v := range after {
			params = append(params, []byte(v))
		}
	}
	params = append(params, []byte(fmt.Sprint(limit)))
	rr := tr.conn.ExecParams(ctx, q, params, nil, nil, nil)
	fields := rr.FieldDescriptions()
	nCols, nKey := len(tr.table.Columns), len(tr.table.Key)
	decoders := make([]valueDecoder, nCols)
	for i := range decoders {
		if i < len(fields) {
			decoders[i] = tr.types.forOID(fields[i].DataTypeOID)
		}
	}
	var out Chunk
	for rr.NextRow() {
		vals := rr.Values()
		row := make(map[string]any, nCols)
		for i, col := range tr.table.Columns {
			if vals[i] == nil {
				row[col] = nil
			} else {
				row[col] = decoders[i](vals[i])
			}
		}
		out.Last = make([]string, nKey)
		for i, v := range vals[nCols : nCols+nKey] {
			out.Last[i] = string(v)
		}
		if out.Snapshot == "" {
			out.Snapshot = string(vals[nCols+nKey])
		}
		out.Rows = append(out.Rows, Change{
			Schema: tr.table.Schema, Table: tr.table.Name, Op: OpRead,
			New: row, Columns: tr.table.Columns, Key: tr.table.Key,
		})
	}
	if _, err := rr.Close(); err != nil {
		return Chunk{}, fmt.Errorf("reading a chunk of %s: %w", tr.qualified(), err)
	}
	return out, nil
}

// messageText is what WriteMessage accepts as prefix and content: they
// are put in the SQL text as literals, so no quoting is needed.
var messageText = regexp.MustCompile(`^[A-Za-z0-9_.:-]*$`)

// WriteMessage writes a transactional logical decoding message in a
// transaction of its own and returns once it is committed and flushed. Prefix and
// content are limited to letters, digits and _ . : -.
func (tr *TableReader) WriteMessage(ctx context.Context, prefix, content string) error {
	if prefix == "" || !messageText.MatchString(prefix) || !messageText.MatchString(content) {
		return fmt.Errorf("writing a logical decoding message: prefix %q or content %q has characters other than letters, digits and _ . : -", prefix, content)
	}
	// Flushed at commit, whatever the server's synchronous_commit: the
	// walsender decodes only flushed WAL, and the stream waits for it.
	q := "START TRANSACTION READ WRITE; SET LOCAL synchronous_commit = on; SELECT pg_logical_emit_message(true, '" +
		prefix + "', '" + content + "'); COMMIT"
	if _, err := tr.conn.Exec(ctx, q).ReadAll(); err != nil {
		return fmt.Errorf("writing a %s message to the WAL: %w", prefix, err)
	}
	return nil
}
