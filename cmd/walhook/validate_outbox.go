package main

import (
	"context"

	"github.com/hashicorp/hcl/v2"
	"github.com/jackc/pgx/v5"

	"github.com/walhook/walhook/cdc/outbox"
	"github.com/walhook/walhook/internal/config"
)

// checkOutbox reports how the outbox table differs from what walhook reads
// (outbox.CheckTable: the problems `run` refuses to start on, and
// warnings), at the config's table attribute, and what is missing in the
// NOTIFY and capture triggers (outbox.CheckTriggers), at the rule that
// reads a table without its capture trigger.
func checkOutbox(ctx context.Context, cfg *config.Config) hcl.Diagnostics {
	o := cfg.Source.Outbox
	if o == nil {
		return nil
	}
	conn, err := pgx.Connect(ctx, cfg.Source.URL)
	if err != nil {
		return nil // config.CheckDatabase reports it
	}
	defer conn.Close(context.WithoutCancel(ctx))
	problems, err := outbox.CheckTable(ctx, conn, o.Table)
	if err != nil {
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot check the outbox table", Detail: sentence(err.Error())}}
	}
	var diags hcl.Diagnostics
	for _, p := range problems {
		diags = append(diags, outboxDiagnostic(cfg, p, "Outbox table: ", rangeOrNil(o.TableRange)))
	}
	polling := cfg.Source.Mode == config.ModeOutbox
	triggers, err := outbox.CheckTriggers(ctx, conn, outbox.TriggerCheck{Outbox: o.Table, Polling: polling, Captured: cfg.EventTables()})
	if err != nil {
		return append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot check the outbox triggers", Detail: sentence(err.Error())})
	}
	for _, p := range triggers {
		subject := rangeOrNil(o.TableRange)
		if p.Table != o.Table {
			subject = ruleTableRange(cfg, p.Table)
		}
		diags = append(diags, outboxDiagnostic(cfg, p, "Outbox triggers: ", subject))
	}
	return diags
}

func outboxDiagnostic(cfg *config.Config, p outbox.Problem, prefix string, subject *hcl.Range) *hcl.Diagnostic {
	p = p.ForConfig(cfg.Filename)
	sev, summary := hcl.DiagError, prefix+"walhook cannot read it as it is"
	if p.Warning {
		sev, summary = hcl.DiagWarning, prefix+"a caveat"
	}
	if p.Column != "" {
		summary = prefix + "column " + p.Column
	}
	return &hcl.Diagnostic{Severity: sev, Summary: summary, Detail: p.Detail + "\nFix: " + p.Fix, Subject: subject}
}

// ruleTableRange is where the first rule on table names it.
func ruleTableRange(cfg *config.Config, table string) *hcl.Range {
	for _, e := range cfg.Events {
		if e.QualifiedTable() == table {
			return rangeOrNil(e.TableRange)
		}
	}
	return nil
}

func rangeOrNil(r hcl.Range) *hcl.Range {
	if r.Filename == "" {
		return nil
	}
	return &r
}
