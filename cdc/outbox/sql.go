package outbox

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/walhook/walhook/internal/pgname"
)

// ChangeType is the event_type of outbox rows that hold a captured row
// change (written by the triggers of TriggersSQL) rather than a ready-made
// event. It cannot be an event name: event names have no brackets.
const ChangeType = "[walhook.change]"

// Channel is the NOTIFY channel pollers listen on. The payload is the
// outbox table ("schema.table"); an empty payload wakes every poller.
const Channel = "walhook_outbox"

// SplitTable splits "schema.table" (or "table", in public).
func SplitTable(name string) (schema, table string, err error) {
	return pgname.SplitTable(name)
}

// ident quotes "schema.table" for SQL.
func ident(name string) (string, error) {
	schema, table, err := SplitTable(name)
	if err != nil {
		return "", err
	}
	return pgx.Identifier{schema, table}.Sanitize(), nil
}

// literal quotes s as an SQL string literal.
func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// functionName is the name of a function that belongs to the outbox table:
// the table's name with a suffix, in the table's schema.
func functionName(outbox, suffix string) (string, error) {
	schema, table, err := SplitTable(outbox)
	if err != nil {
		return "", err
	}
	return pgx.Identifier{schema, table + suffix}.Sanitize(), nil
}

// TableSQL is the DDL of the outbox table table ("schema.table") and of the
// statement trigger that notifies pollers after inserts. It is idempotent.
func TableSQL(table string) (string, error) {
	t, err := ident(table)
	if err != nil {
		return "", err
	}
	schema, name, _ := SplitTable(table)
	notify, _ := functionName(table, "_notify")
	return fmt.Sprintf(`-- walhook outbox table: the application inserts one row per event, in the
-- transaction that makes the change the event announces.
CREATE SCHEMA IF NOT EXISTS %[5]s;
CREATE TABLE IF NOT EXISTS %[1]s (
    id         bigserial   PRIMARY KEY,
    event_type text        NOT NULL,  -- the event's type, e.g. 'order.paid'
    key        text,                  -- ordering/idempotency key (optional)
    tenant     text,                  -- routes to the tenant's API webhooks (optional)
    payload    jsonb       NOT NULL,  -- the event's data
    created_at timestamptz NOT NULL DEFAULT now()  -- the event's timestamp
);

-- Wakes walhook at commit, once per inserting statement. Without it walhook
-- still finds the rows at its poll_interval.
CREATE OR REPLACE FUNCTION %[3]s() RETURNS trigger LANGUAGE plpgsql AS $walhook$
BEGIN
    PERFORM pg_notify(%[4]s, %[2]s);
    RETURN NULL;
END
$walhook$;
DROP TRIGGER IF EXISTS walhook_notify ON %[1]s;
CREATE TRIGGER walhook_notify AFTER INSERT ON %[1]s
    FOR EACH STATEMENT EXECUTE FUNCTION %[3]s();
`, t, literal(schema+"."+name), notify, literal(Channel), pgx.Identifier{schema}.Sanitize()), nil
}

// TriggersSQL installs the trigger fallback: row triggers (and a TRUNCATE
// statement trigger) on each of tables that write every change into the
// outbox table as a ChangeType row. It is idempotent.
//
// The captured row is the row's text (NEW::text), which holds each column
// in its type's text output, as pgoutput sends it; the function pins
// DateStyle so that dates read the same whatever the session's settings.
func TriggersSQL(outbox string, tables []string) (string, error) {
	o, err := ident(outbox)
	if err != nil {
		return "", err
	}
	capture, _ := functionName(outbox, "_capture")
	var b strings.Builder
	fmt.Fprintf(&b, `-- walhook trigger fallback: every change of the tables below is also
-- written into %[1]s, in the same transaction, as a %[3]s row.
CREATE OR REPLACE FUNCTION %[2]s() RETURNS trigger LANGUAGE plpgsql
SET "DateStyle" = 'ISO, MDY'
AS $walhook$
BEGIN
    IF TG_LEVEL = 'STATEMENT' THEN
        INSERT INTO %[1]s (event_type, payload) VALUES (%[3]s, jsonb_build_object(
            'schema', TG_TABLE_SCHEMA, 'table', TG_TABLE_NAME, 'op', 'truncate', 'xid', txid_current()));
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO %[1]s (event_type, payload) VALUES (%[3]s, jsonb_build_object(
            'schema', TG_TABLE_SCHEMA, 'table', TG_TABLE_NAME, 'op', 'insert', 'xid', txid_current(),
            'new', NEW::text));
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO %[1]s (event_type, payload) VALUES (%[3]s, jsonb_build_object(
            'schema', TG_TABLE_SCHEMA, 'table', TG_TABLE_NAME, 'op', 'update', 'xid', txid_current(),
            'new', NEW::text, 'old', OLD::text));
    ELSE
        INSERT INTO %[1]s (event_type, payload) VALUES (%[3]s, jsonb_build_object(
            'schema', TG_TABLE_SCHEMA, 'table', TG_TABLE_NAME, 'op', 'delete', 'xid', txid_current(),
            'old', OLD::text));
    END IF;
    RETURN NULL;
END
$walhook$;
`, o, capture, literal(ChangeType))
	for _, t := range tables {
		q, err := ident(t)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, `DROP TRIGGER IF EXISTS walhook_capture ON %[1]s;
CREATE TRIGGER walhook_capture AFTER INSERT OR UPDATE OR DELETE ON %[1]s
    FOR EACH ROW EXECUTE FUNCTION %[2]s();
DROP TRIGGER IF EXISTS walhook_capture_truncate ON %[1]s;
CREATE TRIGGER walhook_capture_truncate AFTER TRUNCATE ON %[1]s
    FOR EACH STATEMENT EXECUTE FUNCTION %[2]s();
`, q, capture)
	}
	return b.String(), nil
}

// DropTriggersSQL removes what TriggersSQL installed on tables, and the
// capture function: the SQL `walhook triggers uninstall --print` shows,
// without looking at the database (FindInstalled's DropSQL does).
func DropTriggersSQL(outbox string, tables []string) (string, error) {
	capture, err := functionName(outbox, "_capture")
	if err != nil {
		return "", err
	}
	in := Installed{Outbox: outbox, captureFuncs: []string{capture}}
	for _, t := range tables {
		schema, table, err := SplitTable(t)
		if err != nil {
			return "", err
		}
		for _, name := range []string{"walhook_capture", "walhook_capture_truncate"} {
			in.Capture = append(in.Capture, Trigger{Table: schema + "." + table, Name: name, Function: capture})
		}
	}
	return in.DropSQL(false), nil
}

// Apply runs SQL made by TableSQL, TriggersSQL or DropTriggersSQL on the
// database at url: every statement in one round trip and one implicit
// transaction.
func Apply(ctx context.Context, url, sql string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("connecting to the source database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol); err != nil {
		return fmt.Errorf("running the outbox SQL: %w", err)
	}
	return nil
}
