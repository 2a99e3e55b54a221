package config

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/jackc/pgx/v5"
)

// tableInfo is what CheckDatabase learns about one table.
type tableInfo struct {
	replIdent string // d, f, i or n
	columns   []string
	key       []string
}

// CheckDatabase connects to the source database and checks the config
// against it: every table and column a rule reads exists, tables whose rules
// read non-key old columns or changed have REPLICA IDENTITY FULL, and
// wal_level is logical. cfg must have loaded without errors.
func CheckDatabase(ctx context.Context, cfg *Config) hcl.Diagnostics {
	var diags hcl.Diagnostics
	conn, err := pgx.Connect(ctx, cfg.Source.URL)
	if err != nil {
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot connect to the source database",
			Detail: fmt.Sprintf("connecting to source.url: %v.", err)}}
	}
	defer conn.Close(context.WithoutCancel(ctx))

	var walLevel string
	if err := conn.QueryRow(ctx, "SHOW wal_level").Scan(&walLevel); err != nil {
		return append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot read wal_level", Detail: err.Error()})
	}
	if walLevel != "logical" {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "wal_level is not logical",
			Detail: fmt.Sprintf("The source database has wal_level = %s; logical replication needs logical. Run ALTER SYSTEM SET wal_level = logical; and restart Postgres (or use mode = \"outbox\").", walLevel)})
	}

	tables := map[string]*tableInfo{}
	lookup := func(qualified string, r hcl.Range) (*tableInfo, error) {
		if ti, ok := tables[qualified]; ok {
			return ti, nil
		}
		schema, table, _ := strings.Cut(qualified, ".")
		ti, err := loadTable(ctx, conn, schema, table)
		if err != nil {
			return nil, err
		}
		tables[qualified] = ti
		if ti == nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Table not found",
				Detail: fmt.Sprintf("There is no table %s in the source database.", qualified), Subject: rangePtr(r)})
		}
		return ti, nil
	}
	if o := cfg.Source.Outbox; o != nil {
		if _, err := lookup(o.Table, hcl.Range{}); err != nil {
			return append(diags, dbError(err))
		}
	}
	for _, e := range cfg.Events {
		ti, err := lookup(e.QualifiedTable(), e.TableRange)
		if err != nil {
			return append(diags, dbError(err))
		}
		if ti == nil {
			continue
		}
		diags = append(diags, checkReads(e, ti)...)
	}
	return diags
}

// checkReads checks the columns e reads against the table.
func checkReads(e *Event, ti *tableInfo) hcl.Diagnostics {
	var diags hcl.Diagnostics
	reads := e.Reads()
	oldMatters := contains(e.Ops, "update") || contains(e.Ops, "delete")
	var needFull *hcl.Range
	var why string
	for _, ref := range reads.Columns {
		if !contains(ti.columns, ref.Column) {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Column not found",
				Detail:  fmt.Sprintf("Table %s has no column %q (columns: %s).", e.QualifiedTable(), ref.Column, strings.Join(ti.columns, ", ")),
				Subject: rangePtr(ref.Range)})
			continue
		}
		if ref.Row == "old" && oldMatters && !contains(ti.key, ref.Column) && needFull == nil {
			needFull, why = rangePtr(ref.Range), "reads old."+ref.Column
		}
	}
	if reads.WholeOld != nil && oldMatters && needFull == nil {
		needFull, why = reads.WholeOld, "reads the whole old row"
	}
	if reads.Changed != nil && contains(e.Ops, "update") && needFull == nil {
		needFull, why = reads.Changed, "reads changed"
	}
	if needFull != nil && ti.replIdent != "f" {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Table needs REPLICA IDENTITY FULL",
			Detail: fmt.Sprintf("Event %q %s, but %s has REPLICA IDENTITY %s, so Postgres sends only the key columns of the old row. Run: ALTER TABLE %s REPLICA IDENTITY FULL;",
				e.Name, why, e.QualifiedTable(), replIdentName(ti.replIdent), quoteQualified(e.QualifiedTable())),
			Subject: needFull})
	}
	return diags
}

// loadTable reads a table's replica identity, columns and key columns; nil
// when there is no such table.
func loadTable(ctx context.Context, conn *pgx.Conn, schema, table string) (*tableInfo, error) {
	const q = `
SELECT c.relreplident::text,
       array(SELECT a.attname::text FROM pg_attribute a
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum),
       array(SELECT a.attname::text FROM pg_index i
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
             WHERE i.indrelid = c.oid
               AND CASE WHEN c.relreplident = 'i' THEN i.indisreplident ELSE i.indisprimary END)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`
	var ti tableInfo
	err := conn.QueryRow(ctx, q, schema, table).Scan(&ti.replIdent, &ti.columns, &ti.key)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the definition of %s.%s: %w", schema, table, err)
	}
	return &ti, nil
}

func dbError(err error) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot check the source database", Detail: err.Error()}
}

func replIdentName(c string) string {
	switch c {
	case "d":
		return "DEFAULT"
	case "i":
		return "USING INDEX"
	case "n":
		return "NOTHING"
	}
	return "FULL"
}

// quoteQualified quotes schema.table for SQL when a part needs it.
func quoteQualified(qualified string) string {
	schema, table, _ := strings.Cut(qualified, ".")
	quote := func(s string) string {
		if identifierRE.MatchString(s) {
			return s
		}
		return pgx.Identifier{s}.Sanitize()
	}
	return quote(schema) + "." + quote(table)
}

func rangePtr(r hcl.Range) *hcl.Range {
	if r.Filename == "" {
		return nil
	}
	return &r
}
