package outbox

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// TriggerCheck says which triggers CheckTriggers looks for.
type TriggerCheck struct {
	Outbox string // the outbox table, "schema.table"
	// Polling is true in mode "outbox": the outbox table wants its NOTIFY
	// trigger, and Captured their capture triggers. In logical mode a
	// capture trigger on Captured is a mistake.
	Polling bool
	// Captured are the tables the rules read ("schema.table").
	Captured []string
}

// CheckTriggers reports what is missing or wrong in the triggers walhook
// installs: the outbox table's NOTIFY trigger (TableSQL) and, for the
// trigger fallback, the capture triggers of the rules' tables
// (TriggersSQL). Tables that do not exist are left to other checks.
func CheckTriggers(ctx context.Context, conn *pgx.Conn, c TriggerCheck) ([]Problem, error) {
	var problems []Problem
	q, err := ident(c.Outbox)
	if err != nil {
		return nil, err
	}
	capture, err := functionName(c.Outbox, "_capture")
	if err != nil {
		return nil, err
	}
	if c.Polling {
		p, err := checkNotify(ctx, conn, q, capture, c.Outbox)
		if err != nil {
			return nil, err
		}
		for i := range p {
			p[i].Table = c.Outbox
		}
		problems = append(problems, p...)
	}
	for _, table := range c.Captured {
		p, err := checkCapture(ctx, conn, table, capture, c.Polling)
		if err != nil {
			return nil, err
		}
		for i := range p {
			p[i].Table = table
		}
		problems = append(problems, p...)
	}
	return problems, nil
}

// trigger is a user trigger of a table.
type trigger struct {
	name, enabled, function, source string
	onInsert                        bool
	// captures is true when it runs the outbox's capture function.
	captures bool
}

// tableTriggers lists the user triggers of table q (quoted); ok is false
// when the table does not exist. capture is the outbox's capture function
// (quoted).
func tableTriggers(ctx context.Context, conn *pgx.Conn, q, capture string) (triggers []trigger, ok bool, err error) {
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, q).Scan(&exists); err != nil || !exists {
		return nil, false, err
	}
	rows, err := conn.Query(ctx, `
SELECT t.tgname::text, t.tgenabled::text, (t.tgtype & 4) <> 0, p.oid::regproc::text, coalesce(p.prosrc, ''),
       coalesce(p.oid = to_regproc($2), false)
FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
WHERE t.tgrelid = to_regclass($1) AND NOT t.tgisinternal
ORDER BY t.tgname`, q, capture)
	if err != nil {
		return nil, false, err
	}
	triggers, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (trigger, error) {
		var tr trigger
		err := row.Scan(&tr.name, &tr.enabled, &tr.onInsert, &tr.function, &tr.source, &tr.captures)
		return tr, err
	})
	return triggers, true, err
}

// checkNotify looks for an enabled insert trigger on the outbox table that
// notifies channel Channel.
func checkNotify(ctx context.Context, conn *pgx.Conn, q, capture, table string) ([]Problem, error) {
	triggers, ok, err := tableTriggers(ctx, conn, q, capture)
	if err != nil {
		return nil, fmt.Errorf("reading the triggers of outbox table %s: %w", table, err)
	}
	if !ok {
		return nil, nil
	}
	var disabled []string
	for _, tr := range triggers {
		src := strings.ToLower(tr.source)
		if !tr.onInsert || !strings.Contains(src, "notify") || !strings.Contains(src, Channel) {
			continue
		}
		if tr.enabled != "D" {
			return nil, nil
		}
		disabled = append(disabled, tr.name)
	}
	if len(disabled) > 0 {
		return []Problem{{Warning: true,
			Detail: fmt.Sprintf("The trigger %s on %s that wakes walhook is disabled: walhook finds new rows only every poll_interval.", disabled[0], table),
			Fix:    fmt.Sprintf("ALTER TABLE %s ENABLE TRIGGER %s;", q, pgx.Identifier{disabled[0]}.Sanitize())}}, nil
	}
	return []Problem{{Warning: true,
		Detail: fmt.Sprintf("No trigger on %s notifies walhook (channel %s) of inserts: walhook finds new rows only every poll_interval.", table, Channel),
		Fix:    "`walhook outbox init -c <config file>` adds it and leaves the table as it is (`--print` shows the SQL)."}}, nil
}

// checkCapture checks the capture triggers of one table the rules read:
// in polling mode both must be there, enabled and writing into this
// outbox; in logical mode neither should be.
func checkCapture(ctx context.Context, conn *pgx.Conn, table, capture string, polling bool) ([]Problem, error) {
	q, err := ident(table)
	if err != nil {
		return nil, err
	}
	triggers, ok, err := tableTriggers(ctx, conn, q, capture)
	if err != nil {
		return nil, fmt.Errorf("reading the triggers of %s: %w", table, err)
	}
	if !ok {
		return nil, nil
	}
	found := map[string]trigger{}
	for _, tr := range triggers {
		if tr.name == "walhook_capture" || tr.name == "walhook_capture_truncate" {
			found[tr.name] = tr
		}
	}
	if !polling {
		if len(found) == 0 {
			return nil, nil
		}
		return []Problem{{Warning: true,
			Detail: fmt.Sprintf("%s has walhook's capture triggers, but in logical mode its changes come through the slot: every change is also written into the outbox table, where it becomes a failed evaluation.", table),
			Fix:    "`walhook triggers uninstall -c <config file>`."}}, nil
	}
	var problems []Problem
	for _, name := range []string{"walhook_capture", "walhook_capture_truncate"} {
		tr, ok := found[name]
		switch {
		case !ok:
			problems = append(problems, Problem{
				Detail: fmt.Sprintf("%s has no trigger %s: its changes never reach the outbox, so no event of it is sent.", table, name),
				Fix:    "`walhook triggers install -c <config file>` (`--print` shows the SQL)."})
		case !tr.captures:
			problems = append(problems, Problem{
				Detail: fmt.Sprintf("The trigger %s on %s runs %s, not %s: its changes go to another outbox table.", name, table, tr.function, capture),
				Fix:    "`walhook triggers install -c <config file>` (`--print` shows the SQL)."})
		case tr.enabled == "D":
			problems = append(problems, Problem{
				Detail: fmt.Sprintf("The trigger %s on %s is disabled: its changes do not reach the outbox.", name, table),
				Fix:    fmt.Sprintf("ALTER TABLE %s ENABLE TRIGGER %s;", q, name)})
		}
	}
	return problems, nil
}
