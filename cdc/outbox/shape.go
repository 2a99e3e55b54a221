package outbox

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Problem is one way an outbox table, or the triggers around it, differs
// from what walhook reads (the table TableSQL creates), with the change
// that fixes it. docs/outbox.md ("Checking the table") lists them.
type Problem struct {
	// Warning is true when walhook can read the table as it is, with a
	// caveat (a NULL event_type becomes a failed evaluation); false when it
	// cannot, and `walhook run` refuses to start.
	Warning bool
	// Table is the table concerned, "schema.table": the outbox table, or a
	// table whose changes the trigger fallback captures.
	Table string
	// Column is the column concerned; empty for the table as a whole.
	Column string
	// Detail says what is wrong and what it causes, as a sentence.
	Detail string
	// Fix is the SQL statement (or walhook command) that fixes it.
	Fix string
}

// ForConfig is p with the config file named in walhook commands of its fix.
func (p Problem) ForConfig(path string) Problem {
	p.Fix = strings.ReplaceAll(p.Fix, "<config file>", path)
	return p
}

// String is the problem and its fix on one line.
func (p Problem) String() string { return p.Detail + " Fix: " + p.Fix }

// ShapeError is the error of an outbox table that walhook cannot read: its
// message lists every problem that is not a warning, with its fix.
type ShapeError struct {
	Table    string
	Problems []Problem
}

func (e *ShapeError) Error() string {
	var msgs []string
	for _, p := range e.Problems {
		if !p.Warning {
			msgs = append(msgs, p.String())
		}
	}
	return fmt.Sprintf("outbox table %s cannot be read as it is (walhook validate --db lists every problem): %s",
		e.Table, strings.Join(msgs, " "))
}

// Errors returns a *ShapeError holding problems when one of them is not a
// warning, nil otherwise.
func Errors(table string, problems []Problem) error {
	for _, p := range problems {
		if !p.Warning {
			return &ShapeError{Table: table, Problems: problems}
		}
	}
	return nil
}

// column is one column of the table as the catalog describes it.
type column struct {
	name, sqlType string
	// category is pg_type.typcategory of the (domain's base) type: S
	// string, E enum, N numeric, D date/time, U user (json, jsonb).
	category, typname   string
	notNull, hasDefault bool
}

// aliases are column names seen in hand-made outbox tables for each column
// walhook reads, offered as a rename when the column is missing.
var aliases = map[string][]string{
	"id":         {"outbox_id", "seq", "position", "event_id"},
	"event_type": {"type", "event", "event_name", "name", "kind", "topic"},
	"key":        {"aggregate_id", "partition_key", "ordering_key", "event_key"},
	"tenant":     {"tenant_id", "org_id", "organization_id", "account_id"},
	"payload":    {"data", "body", "message", "content", "event_data"},
	"created_at": {"created", "timestamp", "occurred_at", "inserted_at", "ts", "time"},
}

// fits reports whether a column of type c can be read as column name.
func fits(name string, c column) bool {
	switch name {
	case "id":
		return slices.Contains([]string{"int2", "int4", "int8"}, c.typname)
	case "event_type":
		return c.category == "S" || c.category == "E"
	case "key", "tenant":
		return c.category == "S"
	case "payload":
		return c.typname == "json" || c.typname == "jsonb" || c.category == "S"
	case "created_at":
		return c.typname == "timestamptz" || c.typname == "timestamp"
	}
	return false
}

// CheckTable reads the definition of outbox table table ("schema.table")
// and reports each way it differs from the table walhook reads: columns
// id, event_type, key, tenant, payload and created_at, their types and
// nullability, and the primary key on id. No problem means it matches.
func CheckTable(ctx context.Context, conn *pgx.Conn, table string) ([]Problem, error) {
	problems, err := checkTable(ctx, conn, table)
	for i := range problems {
		problems[i].Table = table
	}
	return problems, err
}

func checkTable(ctx context.Context, conn *pgx.Conn, table string) ([]Problem, error) {
	q, err := ident(table)
	if err != nil {
		return nil, err
	}
	schema, name, _ := SplitTable(table)
	var relid uint32
	var kind string
	err = conn.QueryRow(ctx, `SELECT c.oid, c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relname = $2`, schema, name).Scan(&relid, &kind)
	if errors.Is(err, pgx.ErrNoRows) {
		return []Problem{{Detail: fmt.Sprintf("There is no table %s in the source database.", table),
			Fix: "create it with `walhook outbox init -c <config file>` (`--print` shows the SQL, to put in your migrations)."}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the definition of outbox table %s: %w", table, err)
	}
	if kind != "r" && kind != "p" {
		return []Problem{{Detail: fmt.Sprintf("%s is not a table (pg_class.relkind %q): walhook claims and deletes its rows.", table, kind),
			Fix: "point outbox.table at a table, or create one with `walhook outbox init -c <config file>`."}}, nil
	}
	cols, err := tableColumns(ctx, conn, relid)
	if err != nil {
		return nil, fmt.Errorf("reading the columns of outbox table %s: %w", table, err)
	}
	var problems []Problem
	byName := map[string]column{}
	for _, c := range cols {
		byName[c.name] = c
	}
	for _, want := range []string{"id", "event_type", "key", "tenant", "payload", "created_at"} {
		c, ok := byName[want]
		if !ok {
			problems = append(problems, missingColumn(q, want, byName))
			continue
		}
		problems = append(problems, checkColumn(q, c)...)
	}
	if c, ok := byName["id"]; ok && fits("id", c) {
		key, err := idKey(ctx, conn, relid)
		if err != nil {
			return nil, fmt.Errorf("reading the indexes of outbox table %s: %w", table, err)
		}
		switch {
		case len(key) == 1:
		case len(key) > 1:
			problems = append(problems, Problem{Warning: true, Column: "id",
				Detail: fmt.Sprintf("%s's id is unique only together with %s (its key is (%s), as a partitioned table's must be): two rows with one id would share an event id, and a delivered row's delete would take the other.", table, strings.Join(key[1:], ", "), strings.Join(key, ", ")),
				Fix:    "leave id to its sequence: never insert an id of your own."})
		default:
			problems = append(problems, Problem{Column: "id",
				Detail: fmt.Sprintf("%s has no primary key on id: walhook orders rows by id and deletes delivered rows by id, so two rows with one id would share an event id and a later one could be deleted undelivered.", table),
				Fix:    fmt.Sprintf("ALTER TABLE %s ADD PRIMARY KEY (id);", q)})
		}
	}
	return problems, nil
}

// tableColumns reads the columns of relation relid.
func tableColumns(ctx context.Context, conn *pgx.Conn, relid uint32) ([]column, error) {
	rows, err := conn.Query(ctx, `
SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), b.typcategory::text, b.typname::text,
       a.attnotnull, a.atthasdef
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum`, relid)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (column, error) {
		var c column
		err := row.Scan(&c.name, &c.sqlType, &c.category, &c.typname, &c.notNull, &c.hasDefault)
		return c, err
	})
}

// idKey returns the columns of the primary key, or of a valid unique
// index without a condition, of relation relid that includes id, id
// first: ["id"] when id alone is unique; nil when no such key exists.
func idKey(ctx context.Context, conn *pgx.Conn, relid uint32) ([]string, error) {
	rows, err := conn.Query(ctx, `
SELECT array(SELECT a.attname::text FROM unnest(i.indkey[0:i.indnkeyatts - 1]) WITH ORDINALITY k(attnum, n)
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
             ORDER BY a.attname <> 'id', k.n)
FROM pg_index i
WHERE i.indrelid = $1 AND (i.indisprimary OR (i.indisunique AND i.indisvalid AND i.indpred IS NULL))
  AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = i.indrelid AND a.attname = 'id' AND a.attnum = ANY (i.indkey)
              AND (i.indisprimary OR a.attnotnull))
ORDER BY i.indnkeyatts, NOT i.indisprimary`, relid)
	if err != nil {
		return nil, err
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[[]string])
	if err != nil || len(keys) == 0 {
		return nil, err
	}
	return keys[0], nil
}

// missingColumn is the problem of a missing column: a rename when a
// column of a usual other name fits, else the column to add.
func missingColumn(q, want string, byName map[string]column) Problem {
	p := Problem{Column: want, Detail: fmt.Sprintf("There is no column %s.", want)}
	for _, alias := range aliases[want] {
		if c, ok := byName[alias]; ok && fits(want, c) {
			p.Detail = fmt.Sprintf("There is no column %s (walhook reads %s from it; %s looks like it).", want, want, alias)
			p.Fix = fmt.Sprintf("ALTER TABLE %s RENAME COLUMN %s TO %s;", q, pgx.Identifier{alias}.Sanitize(), want)
			return p
		}
	}
	switch want {
	case "id":
		p.Fix = fmt.Sprintf("ALTER TABLE %s ADD COLUMN id bigserial PRIMARY KEY;", q)
	case "event_type":
		p.Fix = fmt.Sprintf("ALTER TABLE %s ADD COLUMN event_type text NOT NULL;", q)
	case "key", "tenant":
		p.Detail = fmt.Sprintf("There is no column %s (it may hold NULL, but walhook reads it).", want)
		p.Fix = fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s text;", q, want)
	case "payload":
		p.Fix = fmt.Sprintf("ALTER TABLE %s ADD COLUMN payload jsonb NOT NULL;", q)
	case "created_at":
		p.Fix = fmt.Sprintf("ALTER TABLE %s ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();", q)
	}
	return p
}

// checkColumn reports the problems of a column walhook reads.
func checkColumn(q string, c column) []Problem {
	var out []Problem
	col := pgx.Identifier{c.name}.Sanitize()
	wrongType := func(want, using string) {
		out = append(out, Problem{Column: c.name,
			Detail: fmt.Sprintf("Column %s is %s; walhook reads it as %s.", c.name, c.sqlType, want),
			Fix:    fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s TYPE %s;", q, col, using)})
	}
	nullable := func(detail string) {
		if !c.notNull {
			out = append(out, Problem{Warning: true, Column: c.name, Detail: detail,
				Fix: fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET NOT NULL;", q, col)})
		}
	}
	if !fits(c.name, c) {
		switch c.name {
		case "id":
			wrongType("an integer (bigint) that orders the rows", "bigint")
		case "event_type":
			wrongType("text, the event's name", "text")
		case "key", "tenant":
			wrongType("text", "text USING "+col+"::text")
		case "payload":
			wrongType("JSON (jsonb, json, or text holding JSON)", "jsonb USING "+col+"::text::jsonb")
		case "created_at":
			wrongType("the event's time (timestamptz)", "timestamptz USING "+col+"::timestamptz")
		}
		return out
	}
	switch c.name {
	case "event_type":
		nullable("Column event_type may be NULL: a row without an event type becomes a failed evaluation (kept, visible, replayable), not an event.")
	case "payload":
		nullable("Column payload may be NULL: a row whose payload is not a JSON object or array becomes a failed evaluation, not an event.")
	case "created_at":
		nullable("Column created_at may be NULL: a row needs its event's time.")
		if c.typname == "timestamp" {
			out = append(out, Problem{Warning: true, Column: c.name,
				Detail: "Column created_at is timestamp without time zone: walhook reads its values as UTC (the conversion below reads them in the session's TimeZone).",
				Fix:    fmt.Sprintf("ALTER TABLE %s ALTER COLUMN created_at TYPE timestamptz;", q)})
		}
		if !c.hasDefault {
			out = append(out, Problem{Warning: true, Column: c.name,
				Detail: "Column created_at has no default: every insert must set it.",
				Fix:    fmt.Sprintf("ALTER TABLE %s ALTER COLUMN created_at SET DEFAULT now();", q)})
		}
	}
	return out
}
