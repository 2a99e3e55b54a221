package outbox

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Installed is what walhook installed around one outbox table that is still
// in the database: the capture triggers of the trigger fallback
// (TriggersSQL), the outbox table and its NOTIFY trigger (TableSQL), and
// the trigger functions they run. FindInstalled reads it, DropSQL removes
// the triggers; the outbox table holds the application's events and is
// never dropped.
type Installed struct {
	// Outbox is the outbox table ("schema.table"); empty when the config
	// has none.
	Outbox string
	// OutboxExists says whether the outbox table exists; Rows is its row
	// count then, an estimate when Estimated (see BacklogCountCap).
	OutboxExists bool
	Rows         int64
	Estimated    bool
	// Capture are the walhook_capture and walhook_capture_truncate
	// triggers on the tables asked about, and on any other table when they
	// write into Outbox.
	Capture []Trigger
	// Notify is the outbox table's walhook_notify trigger, if there.
	Notify *Trigger
	// captureFuncs and notifyFuncs are the functions walhook created that
	// nothing but Capture (or Notify) runs: DropSQL drops them with them.
	captureFuncs, notifyFuncs []string
}

// Trigger is one trigger walhook installed.
type Trigger struct {
	Table    string // "schema.table"
	Name     string
	Function string // quoted, "schema"."name"
}

// CaptureTables lists the tables that have capture triggers, sorted.
func (in Installed) CaptureTables() []string {
	var tables []string
	for _, tr := range in.Capture {
		if len(tables) == 0 || tables[len(tables)-1] != tr.Table {
			tables = append(tables, tr.Table)
		}
	}
	return tables
}

// CaptureFunctions lists the capture functions DropSQL drops.
func (in Installed) CaptureFunctions() []string { return in.captureFuncs }

// NotifyFunctions lists the NOTIFY functions DropSQL drops with notify.
func (in Installed) NotifyFunctions() []string { return in.notifyFuncs }

// FindInstalled reads what walhook installed around the outbox table
// outbox (may be empty) and on tables ("schema.table"): walhook_capture
// and walhook_capture_truncate triggers on tables, or running the outbox's
// capture function on any table; the outbox table, its row count and its
// walhook_notify trigger. A function is walhook's (and one DropSQL drops)
// when its source is what TriggersSQL or TableSQL made and no other
// trigger runs it.
func FindInstalled(ctx context.Context, conn *pgx.Conn, outbox string, tables []string) (Installed, error) {
	in := Installed{Outbox: outbox}
	quoted := make([]string, 0, len(tables))
	for _, t := range tables {
		q, err := ident(t)
		if err != nil {
			return in, err
		}
		quoted = append(quoted, q)
	}
	var capture *string
	if outbox != "" {
		f, err := functionName(outbox, "_capture")
		if err != nil {
			return in, err
		}
		capture = &f
	}
	found, err := installedTriggers(ctx, conn, `t.tgname IN ('walhook_capture', 'walhook_capture_truncate')
		AND (t.tgrelid IN (SELECT to_regclass(x)::oid FROM unnest($1::text[]) x) OR t.tgfoid = to_regproc($2)::oid)`, quoted, capture)
	if err != nil {
		return in, fmt.Errorf("looking up walhook's capture triggers: %w", err)
	}
	in.Capture = found.triggers
	in.captureFuncs, err = unusedFunctions(ctx, conn, found, ChangeType, capture)
	if err != nil {
		return in, err
	}
	if outbox == "" {
		return in, nil
	}
	q, _ := ident(outbox)
	if err := conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, q).Scan(&in.OutboxExists); err != nil {
		return in, fmt.Errorf("looking up outbox table %s: %w", outbox, err)
	}
	if !in.OutboxExists {
		return in, nil
	}
	if in.Rows, in.Estimated, err = countRows(ctx, conn, q); err != nil {
		return in, fmt.Errorf("counting the rows of outbox table %s: %w", outbox, err)
	}
	found, err = installedTriggers(ctx, conn, `t.tgname = 'walhook_notify' AND t.tgrelid = to_regclass($1)::oid`, q)
	if err != nil {
		return in, fmt.Errorf("looking up the notify trigger of %s: %w", outbox, err)
	}
	if len(found.triggers) > 0 {
		in.Notify = &found.triggers[0]
	}
	notify, _ := functionName(outbox, "_notify")
	in.notifyFuncs, err = unusedFunctions(ctx, conn, found, Channel, &notify)
	return in, err
}

// foundTriggers are triggers installedTriggers found, with what their
// functions are.
type foundTriggers struct {
	triggers []Trigger
	oids     map[string]uint32 // function (quoted) -> its oid
	sources  map[string]string // function (quoted) -> its source
}

// installedTriggers lists the user triggers matching where (a condition on
// pg_trigger t, with parameters args), ordered by table and name.
func installedTriggers(ctx context.Context, conn *pgx.Conn, where string, args ...any) (foundTriggers, error) {
	found := foundTriggers{oids: map[string]uint32{}, sources: map[string]string{}}
	rows, err := conn.Query(ctx, `
SELECT n.nspname::text, c.relname::text, t.tgname::text, pn.nspname::text, p.proname::text, p.oid::int8, coalesce(p.prosrc, '')
FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_namespace pn ON pn.oid = p.pronamespace
WHERE NOT t.tgisinternal AND `+where+`
ORDER BY 1, 2, 3`, args...)
	if err != nil {
		return found, err
	}
	defer rows.Close()
	for rows.Next() {
		var schema, table, name, fschema, fname, src string
		var oid int64
		if err := rows.Scan(&schema, &table, &name, &fschema, &fname, &oid, &src); err != nil {
			return found, err
		}
		f := pgx.Identifier{fschema, fname}.Sanitize()
		found.triggers = append(found.triggers, Trigger{Table: schema + "." + table, Name: name, Function: f})
		found.oids[f], found.sources[f] = uint32(oid), src
	}
	return found, rows.Err()
}

// unusedFunctions lists the functions of found, and named (if it exists),
// that walhook made (their source contains marker) and that no trigger
// outside found runs, sorted.
func unusedFunctions(ctx context.Context, conn *pgx.Conn, found foundTriggers, marker string, named *string) ([]string, error) {
	if named != nil {
		if _, ok := found.oids[*named]; !ok {
			var oid *int64
			var src string
			err := conn.QueryRow(ctx, `SELECT to_regproc($1)::int8, coalesce((SELECT prosrc FROM pg_proc WHERE oid = to_regproc($1)), '')`, *named).Scan(&oid, &src)
			if err != nil {
				return nil, fmt.Errorf("looking up function %s: %w", *named, err)
			}
			if oid != nil {
				found.oids[*named], found.sources[*named] = uint32(*oid), src
			}
		}
	}
	uses := map[string]int{}
	for _, tr := range found.triggers {
		uses[tr.Function]++
	}
	var funcs []string
	for f, oid := range found.oids {
		if !strings.Contains(found.sources[f], marker) {
			continue
		}
		var all int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_trigger WHERE tgfoid = $1`, oid).Scan(&all); err != nil {
			return nil, fmt.Errorf("looking up the triggers that run %s: %w", f, err)
		}
		if all == uses[f] {
			funcs = append(funcs, f)
		}
	}
	sort.Strings(funcs)
	return funcs, nil
}

// DropSQL removes the capture triggers and the capture functions nothing
// else runs, and with notify also the outbox table's NOTIFY trigger and its
// function. It leaves the outbox table.
func (in Installed) DropSQL(notify bool) string {
	var b strings.Builder
	drop := func(triggers []Trigger, funcs []string) {
		for _, tr := range triggers {
			q, _ := ident(tr.Table)
			fmt.Fprintf(&b, "DROP TRIGGER IF EXISTS %s ON %s;\n", pgx.Identifier{tr.Name}.Sanitize(), q)
		}
		for _, f := range funcs {
			fmt.Fprintf(&b, "DROP FUNCTION IF EXISTS %s();\n", f)
		}
	}
	drop(in.Capture, in.captureFuncs)
	if notify {
		var triggers []Trigger
		if in.Notify != nil {
			triggers = append(triggers, *in.Notify)
		}
		drop(triggers, in.notifyFuncs)
	}
	return b.String()
}

// DropOutboxSQL is the statement that drops the outbox table, for the user
// to run: walhook never drops it.
func (in Installed) DropOutboxSQL() string {
	q, _ := ident(in.Outbox)
	return "DROP TABLE " + q + ";"
}
