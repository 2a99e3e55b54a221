package config

import (
	"context"
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/jackc/pgx/v5"

	"github.com/walhook/walhook/cdc"
)

// CheckDatabase connects to the source database and checks the config
// against it: every table and column a rule reads exists, tables whose rules
// read non-key old columns or changed have REPLICA IDENTITY FULL, rules that
// read large (TOASTable) columns on update are warned that those may be
// missing without FULL, the replication slot (if it exists) is a pgoutput
// slot of this database, and wal_level is logical (logical mode). The outbox
// table is cdc/outbox's CheckTable's to check. cfg must have loaded without
// errors.
func CheckDatabase(ctx context.Context, cfg *Config) hcl.Diagnostics {
	var diags hcl.Diagnostics
	conn, err := pgx.Connect(ctx, cfg.Source.URL)
	if err != nil {
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot connect to the source database",
			Detail: fmt.Sprintf("connecting to source.url: %v.", err)}}
	}
	defer conn.Close(context.WithoutCancel(ctx))

	settings, err := cdc.LookupSettings(ctx, conn)
	if err != nil {
		return append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot read wal_level", Detail: err.Error()})
	}
	if settings.WALLevel != "logical" && cfg.Source.Mode != ModeOutbox {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "wal_level is not logical",
			Detail: fmt.Sprintf("The source database has wal_level = %s; logical replication needs logical. Run ALTER SYSTEM SET wal_level = logical; and restart Postgres (or use mode = \"outbox\").", settings.WALLevel)})
	}
	if cfg.Source.Mode != "outbox" {
		slotDiags, err := checkSlot(ctx, conn, cfg.Source.Slot, settings.Database)
		if err != nil {
			return append(diags, dbError(err))
		}
		diags = append(diags, slotDiags...)
	}

	tables := map[string]*cdc.Table{}
	looked := map[string]bool{}
	lookup := func(qualified string, r hcl.Range) (*cdc.Table, error) {
		if looked[qualified] {
			return tables[qualified], nil
		}
		schema, table, _ := strings.Cut(qualified, ".")
		t, err := cdc.LookupTable(ctx, conn, schema, table)
		if err != nil {
			return nil, err
		}
		looked[qualified], tables[qualified] = true, t
		if t == nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Table not found",
				Detail: fmt.Sprintf("There is no table %s in the source database.", qualified), Subject: rangePtr(r)})
		}
		return t, nil
	}
	for _, e := range cfg.Events {
		t, err := lookup(e.QualifiedTable(), e.TableRange)
		if err != nil {
			return append(diags, dbError(err))
		}
		if t == nil {
			continue
		}
		diags = append(diags, checkReads(e, t)...)
		if cfg.Source.Mode != "outbox" {
			diags = append(diags, checkToast(e, t)...)
		}
	}
	return diags
}

// checkSlot checks that the replication slot, if it exists already, is a
// logical pgoutput slot of database: a slot decodes only the database it
// was created in.
func checkSlot(ctx context.Context, conn *pgx.Conn, name, database string) (hcl.Diagnostics, error) {
	slot, err := cdc.ReadSlotStatus(ctx, conn, name)
	if err != nil || !slot.Exists {
		return nil, err
	}
	var problem string
	switch {
	case slot.Type != "logical":
		problem = fmt.Sprintf("Replication slot %q is a %s slot, not a logical one.", name, slot.Type)
	case slot.Database != database:
		problem = fmt.Sprintf("Replication slot %q belongs to database %q, but source.url connects to database %q. A logical slot decodes only the database it was created in, so walhook cannot stream %q's changes through it.",
			name, slot.Database, database, database)
	case slot.Plugin != "pgoutput":
		problem = fmt.Sprintf("Replication slot %q uses the output plugin %q; walhook needs pgoutput.", name, slot.Plugin)
	default:
		return nil, nil
	}
	fix := fmt.Sprintf(" Set source.slot to a name no other tool uses (walhook creates the slot), or, if nothing uses the existing slot any more, drop it: SELECT pg_drop_replication_slot('%s');", name)
	if slot.Database != "" && slot.Database != database {
		fix += fmt.Sprintf(" (connected to database %s).", slot.Database)
	}
	if slot.Active {
		fix += " The slot is in use right now."
	}
	return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Replication slot belongs elsewhere", Detail: problem + fix}}, nil
}

// checkReads checks the columns e reads against the table.
func checkReads(e *Event, t *cdc.Table) hcl.Diagnostics {
	var diags hcl.Diagnostics
	reads := e.Reads()
	oldMatters := contains(e.Ops, "update") || contains(e.Ops, "delete")
	var needFull *hcl.Range
	var why string
	for _, ref := range reads.Columns {
		if t.Column(ref.Column) == nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Column not found",
				Detail:  fmt.Sprintf("Table %s has no column %q (columns: %s).", e.QualifiedTable(), ref.Column, strings.Join(t.ColumnNames(), ", ")),
				Subject: rangePtr(ref.Range)})
			continue
		}
		if ref.Row == "old" && oldMatters && !t.IsKey(ref.Column) && needFull == nil {
			needFull, why = rangePtr(ref.Range), "reads old."+ref.Column
		}
	}
	if reads.WholeOld != nil && oldMatters && needFull == nil {
		needFull, why = reads.WholeOld, "reads the whole old row"
	}
	if reads.Changed != nil && contains(e.Ops, "update") && needFull == nil {
		needFull, why = reads.Changed, "reads changed"
	}
	if needFull != nil && !t.FullIdentity() {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Table needs REPLICA IDENTITY FULL",
			Detail: fmt.Sprintf("Event %q %s, but %s has REPLICA IDENTITY %s, so Postgres sends only the key columns of the old row. Run: ALTER TABLE %s REPLICA IDENTITY FULL;",
				e.Name, why, e.QualifiedTable(), replIdentName(t.Identity), quoteQualified(e.QualifiedTable())),
			Subject: needFull})
	}
	return diags
}

// checkToast warns when an update rule reads TOASTable columns of a table
// without REPLICA IDENTITY FULL: an update that leaves such a large value
// unchanged does not send it, so it is missing from new.
func checkToast(e *Event, t *cdc.Table) hcl.Diagnostics {
	if !contains(e.Ops, "update") || t.FullIdentity() {
		return nil
	}
	reads := e.Reads()
	whole := e.Data == nil || readsWholeNew(e)
	var cols []string
	subject := rangePtr(e.DeclRange)
	for _, c := range t.Columns {
		if !c.Toastable || t.IsKey(c.Name) {
			continue
		}
		if whole {
			cols = append(cols, c.Name)
			continue
		}
		for _, ref := range reads.Columns {
			if ref.Row == "new" && ref.Column == c.Name {
				cols = append(cols, c.Name)
				if len(cols) == 1 {
					subject = rangePtr(ref.Range)
				}
				break
			}
		}
	}
	if len(cols) == 0 {
		return nil
	}
	return hcl.Diagnostics{{Severity: hcl.DiagWarning, Summary: "Large values may be missing on update",
		Detail: fmt.Sprintf("Event %q reads %s of %s on update. When an update leaves a large (TOASTed, over about 2 kB) value unchanged, Postgres does not send it, and %s has REPLICA IDENTITY %s, so walhook cannot fill it in: the column is missing from new and from the payload (reading it is an error; try(new.col, null) copes). Run: ALTER TABLE %s REPLICA IDENTITY FULL; to always get the whole row.",
			e.Name, strings.Join(cols, ", "), e.QualifiedTable(), e.QualifiedTable(), replIdentName(t.Identity), quoteQualified(e.QualifiedTable())),
		Subject: subject}}
}

// readsWholeNew reports whether e's data uses new as a whole (data = new,
// merge(new, ...)).
func readsWholeNew(e *Event) bool {
	for _, tr := range e.Data.Variables() {
		if tr.RootName() == "new" {
			if _, ok := TraversalColumn(tr); !ok {
				return true
			}
		}
	}
	return false
}

func dbError(err error) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot check the source database", Detail: err.Error()}
}

func replIdentName(c byte) string {
	switch c {
	case 'd':
		return "DEFAULT"
	case 'i':
		return "USING INDEX"
	case 'n':
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
