package config

import (
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// RuleVariables are the variables an event block's expressions may use.
var RuleVariables = []string{"new", "old", "op", "table", "tx", "changed"}

// BodyVariables are the variables an endpoint's body expression may use.
var BodyVariables = []string{"event"}

// TxType is the type of the tx variable.
var TxType = cty.Object(map[string]cty.Type{"id": cty.Number, "lsn": cty.String, "commit_time": cty.String})

// EventType is the type of an endpoint body's event variable.
var EventType = cty.Object(map[string]cty.Type{
	"id": cty.String, "type": cty.String, "timestamp": cty.String,
	"data": cty.DynamicPseudoType, "key": cty.String, "tenant": cty.String,
})

// ruleCheckVars stand for a change's variables when checking an expression
// at load time: unknown values of the right types.
var ruleCheckVars = map[string]cty.Value{
	"new": cty.DynamicVal, "old": cty.DynamicVal,
	"op": cty.UnknownVal(cty.String), "table": cty.UnknownVal(cty.String),
	"tx": cty.UnknownVal(TxType), "changed": cty.UnknownVal(cty.List(cty.String)),
}

var bodyCheckVars = map[string]cty.Value{"event": cty.UnknownVal(EventType)}

var validOps = map[string]bool{"insert": true, "update": true, "delete": true, "truncate": true, "read": true}

// invalidEventName is the detail of an "Invalid event name" diagnostic.
const invalidEventName = "An event name is non-empty and has no spaces or glob characters (* ? [ ] \\), like \"deal.stage.changed\"; got %q."

// validEventName reports whether name may name an event: an event block's
// label or a name in an outbox block's events list.
func validEventName(name string) bool {
	return name != "" && !strings.ContainsAny(name, " \t\n*?[]\\")
}

func (d *decoder) events(cfg *Config, blocks []*eventBlock) {
	byName := map[string]*eventBlock{}
	for _, b := range blocks {
		if prev, ok := byName[b.Name]; ok {
			d.errorf(b.NameRange, "Duplicate event name", "An event named %q is already defined at %s.", b.Name, prev.NameRange)
			continue
		}
		byName[b.Name] = b
		if !validEventName(b.Name) {
			d.errorf(b.NameRange, "Invalid event name", invalidEventName, b.Name)
		}
		e := &Event{Name: b.Name, Description: b.Description, DeclRange: b.DefRange, TableRange: b.TableRange}
		if present(b.TableRange) && !d.failed(b.TableRange) {
			schema, table, err := splitTable(b.Table)
			if err != nil {
				d.errorf(b.TableRange, "Invalid table name", "%s", sentence(err))
			}
			e.Schema, e.Table = schema, table
		}
		seen := map[string]bool{}
		for _, op := range b.On {
			if !validOps[op] {
				d.errorf(b.OnRange, "Unknown operation", "%q is not an operation: use insert, update, delete, truncate or read (rows a backfill reads).", op)
				continue
			}
			if !seen[op] {
				seen[op] = true
				e.Ops = append(e.Ops, op)
			}
		}
		if present(b.OnRange) && len(b.On) == 0 {
			d.errorf(b.OnRange, "No operations", "on lists at least one of insert, update, delete, truncate, read.")
		}
		e.When = d.ruleExpr(b.When, b.WhenRange, "when")
		e.Key = d.ruleExpr(b.Key, b.KeyRange, "key")
		e.Tenant = d.ruleExpr(b.Tenant, b.TenantRange, "tenant")
		e.Data = d.ruleExpr(b.Data, b.DataRange, "data")
		cfg.Events = append(cfg.Events, e)
	}
}

// ruleExpr checks an event expression and returns it, or nil when absent.
func (d *decoder) ruleExpr(expr hcl.Expression, attr hcl.Range, name string) hcl.Expression {
	if !present(attr) {
		return nil
	}
	d.checkExpr(expr, name, RuleVariables, ruleCheckVars,
		"An event's expressions can use new, old, op, table, tx and changed.")
	return expr
}

// checkExpr reports unknown variables and functions in expr, then evaluates
// it with unknown values of the right types to catch type errors early.
func (d *decoder) checkExpr(expr hcl.Expression, attr string, allowed []string, vars map[string]cty.Value, varHelp string) {
	n := len(d.diags)
	for _, tr := range expr.Variables() {
		root := tr.RootName()
		if !contains(allowed, root) {
			d.errorf(tr.SourceRange(), "Unknown variable", "There is no variable named %q here. %s", root, varHelp)
		}
	}
	if sx, ok := expr.(hclsyntax.Expression); ok {
		hclsyntax.VisitAll(sx, func(node hclsyntax.Node) hcl.Diagnostics {
			call, ok := node.(*hclsyntax.FunctionCallExpr)
			if !ok {
				return nil
			}
			if _, known := functions[call.Name]; !known {
				d.errorf(call.NameRange, "Unknown function", "There is no function named %q. Functions: HCL's standard library (lower, merge, coalesce, jsonencode, ...), try, can and env.", call.Name)
			}
			return nil
		})
	}
	if len(d.diags) > n {
		return
	}
	v, diags := expr.Value(&hcl.EvalContext{Variables: vars, Functions: functions})
	if diags.HasErrors() {
		d.diags = append(d.diags, diags...)
		return
	}
	ty := v.Type()
	if ty == cty.DynamicPseudoType {
		return
	}
	switch attr {
	case "when":
		if _, err := convert.Convert(v, cty.Bool); err != nil {
			d.errorf(expr.Range(), "Invalid when", "when must be a bool (true or false), not %s.", ty.FriendlyName())
		}
	case "key", "tenant":
		if !ty.IsPrimitiveType() {
			d.errorf(expr.Range(), "Invalid "+attr, "%s must be a string or number, not %s.", attr, ty.FriendlyName())
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
