package main

import (
	"context"
	"slices"
	"strings"
	"unicode"

	"github.com/hashicorp/hcl/v2"
	"github.com/jackc/pgx/v5"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/config"
)

// checkCapture reports the tables run would refuse to publish because
// Postgres would then refuse the application's UPDATE or DELETE on them
// (cdc.CheckCapture), each at the rule that wants what the table cannot
// give. Missing tables are config.CheckDatabase's to report.
func checkCapture(ctx context.Context, cfg *config.Config) hcl.Diagnostics {
	if cfg.Source.Mode == config.ModeOutbox || len(cfg.Source.Tables) == 0 {
		return nil
	}
	conn, err := pgx.Connect(ctx, cfg.Source.URL)
	if err != nil {
		return nil // config.CheckDatabase reports it
	}
	defer conn.Close(context.WithoutCancel(ctx))
	problems, err := cdc.CheckCapture(ctx, conn, cdc.ReaderConfig{URL: cfg.Source.URL, Slot: cfg.Source.Slot,
		Publication: cfg.Source.Publication, Tables: cfg.Source.Tables, Uses: cfg.TableUses()})
	if err != nil {
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot check the tables' replica identity", Detail: err.Error()}}
	}
	var diags hcl.Diagnostics
	for _, p := range problems {
		summary := "Table has no replica identity"
		switch p.Kind {
		case cdc.TableMissing:
			continue
		case cdc.InsertsNotDecodable:
			summary = "Inserts-only publication not usable yet"
		}
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary,
			Detail: sentence(p.Error()), Subject: captureSubject(cfg, p)})
	}
	return diags
}

// captureSubject is where the config names p's table: the first rule on
// it that wants updates or deletes for NoReplicaIdentity, else the first
// rule on it; nil for the outbox table.
func captureSubject(cfg *config.Config, p cdc.TableProblem) *hcl.Range {
	var first *hcl.Range
	for _, e := range cfg.Events {
		if e.QualifiedTable() != p.Table || e.TableRange.Filename == "" {
			continue
		}
		r := e.TableRange
		if p.Kind == cdc.NoReplicaIdentity && (slices.Contains(e.Ops, "update") || slices.Contains(e.Ops, "delete")) {
			return &r
		}
		if first == nil {
			first = &r
		}
	}
	return first
}

// sentence capitalizes msg and ends it with a full stop.
func sentence(msg string) string {
	if msg == "" {
		return msg
	}
	r := []rune(msg)
	r[0] = unicode.ToUpper(r[0])
	return strings.TrimSuffix(string(r), ".") + "."
}
