package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/hcl/v2"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/store"
	"github.com/walhook/walhook/relay"
)

// slotDiagnostics judges the slot and publication against walhook's record
// of its slot, as `walhook run` would at start: a slot that is missing but
// recorded, re-created or moved by someone else, invalidated, or whose
// publication is gone is an error with the way out. (A slot of another
// database is reported by config.CheckDatabase.)
func slotDiagnostics(ctx context.Context, cfg *config.Config) hcl.Diagnostics {
	if cfg.Source.Mode == config.ModeOutbox {
		return nil
	}
	var diags hcl.Diagnostics
	var records cdc.SlotRecords
	st, pool, err := openState(ctx, cfg)
	switch {
	case errors.Is(err, store.ErrNoSchema):
	case err != nil:
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Cannot read walhook's record of its slot",
			Detail: fmt.Sprintf("%v. The slot is checked without it: a slot dropped and re-created meanwhile is not noticed.", err)})
	default:
		defer pool.Close()
		records = relay.SlotRecords(st)
	}
	check, err := cdc.CheckSlot(ctx, cfg.Source.URL, cfg.Source.Slot, cfg.Source.Publication, records)
	if err != nil {
		return append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot check the replication slot", Detail: err.Error()})
	}
	if errors.Is(check.Problem, cdc.ErrGap) {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Changes were lost to the replication slot", Detail: check.Problem.Error() + "."})
	}
	return diags
}
