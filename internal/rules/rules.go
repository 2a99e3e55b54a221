package rules

import (
	"fmt"
	"sync/atomic"

	"github.com/hashicorp/hcl/v2"
	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/config"
)

// Rules are the compiled event blocks of a config, indexed by table and op.
type Rules struct {
	rules []*rule
	// outbox are the events declared by the outbox block, for the catalogue.
	outbox []EventInfo
	// tables maps schema, then table, to that table's rules by op.
	tables map[string]map[string]*tableRules
	base   *hcl.EvalContext
}

// EventInfo describes an event type for the catalogue (GET /v1/events).
type EventInfo struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Table       string   `json:"table"`
	Ops         []string `json:"ops"`
	// When is the rule's condition as written; empty: every change.
	When string `json:"when,omitempty"`
	// Source is "outbox" for an event the application writes into the
	// outbox table (Table; Ops empty), declared by the outbox block's
	// events list; empty for a rule's event.
	Source string `json:"source,omitempty"`
}

// SourceOutbox is EventInfo.Source of an event declared by the outbox block.
const SourceOutbox = "outbox"

// tableRules are one table's rules, by op index (see opIndex).
type tableRules struct {
	byOp [5][]*rule
	// needs is, per op, what the op's rules read together: each change
	// builds those variables once, for all its rules.
	needs [5]needs
	// rowBytes is the length of the table's last default data, to size
	// the next.
	rowBytes atomic.Int64
}

// rule is one compiled event block.
type rule struct {
	name  string
	table string
	info  EventInfo
	when  *compiledExpr
	key   *compiledExpr
	// tenant and data are nil when the block leaves them to the defaults.
	tenant *compiledExpr
	data   *compiledExpr
	// fastData writes data without HCL for the common shapes; nil if not.
	fastData fastData
}

// compiledExpr is an expression and the variables it reads.
type compiledExpr struct {
	expr  hcl.Expression
	needs needs
	// fast evaluates common shapes without HCL; nil when expr is not one.
	fast fastFunc
}

// needs says which variables an expression reads, and of new and old which
// columns (nil: the whole row).
type needs struct {
	vars     uint8
	newAttrs []string
	oldAttrs []string
}

const (
	needNew uint8 = 1 << iota
	needOld
	needOp
	needTable
	needTx
	needChanged
)

var varBits = map[string]uint8{
	"new": needNew, "old": needOld, "op": needOp, "table": needTable, "tx": needTx, "changed": needChanged,
}

// Compile indexes cfg's event blocks. cfg must have loaded without errors.
func Compile(cfg *config.Config) (*Rules, error) { return compileRules(cfg, true) }

// compileRules is Compile; fast false leaves every expression to HCL (tests
// compare both paths).
func compileRules(cfg *config.Config, fast bool) (*Rules, error) {
	r := &Rules{
		tables: map[string]map[string]*tableRules{},
		base:   &hcl.EvalContext{Functions: functions},
	}
	for _, e := range cfg.Events {
		ru := &rule{
			name:  e.Name,
			table: e.QualifiedTable(),
			info:  EventInfo{Name: e.Name, Description: e.Description, Table: e.QualifiedTable(), Ops: e.Ops, When: e.WhenText},
		}
		ru.when = compile(e.When, fast)
		ru.key = compile(e.Key, fast)
		ru.tenant = compile(e.Tenant, fast)
		ru.data = compile(e.Data, fast)
		if e.Data != nil && fast {
			ru.fastData = compileFastData(e.Data)
		}
		byTable := r.tables[e.Schema]
		if byTable == nil {
			byTable = map[string]*tableRules{}
			r.tables[e.Schema] = byTable
		}
		tr := byTable[e.Table]
		if tr == nil {
			tr = &tableRules{}
			byTable[e.Table] = tr
		}
		for _, op := range e.Ops {
			i := opIndex(cdc.Op(op))
			if i < 0 {
				return nil, fmt.Errorf("compiling event %q: unknown op %q", e.Name, op)
			}
			tr.byOp[i] = append(tr.byOp[i], ru)
			for _, ce := range []*compiledExpr{ru.when, ru.key, ru.tenant, ru.data} {
				if ce != nil {
					tr.needs[i] = tr.needs[i].union(ce.needs)
				}
			}
		}
		r.rules = append(r.rules, ru)
	}
	if o := cfg.Source.Outbox; o != nil {
		for _, name := range o.Events {
			r.outbox = append(r.outbox, EventInfo{Name: name, Description: o.Description(name), Table: o.Table, Ops: []string{}, Source: SourceOutbox})
		}
	}
	return r, nil
}

// compile analyses which variables and columns expr reads.
func compile(expr hcl.Expression, fast bool) *compiledExpr {
	if expr == nil {
		return nil
	}
	c := &compiledExpr{expr: expr}
	if fast {
		c.fast = compileFast(expr)
	}
	newAll, oldAll := false, false
	for _, tr := range expr.Variables() {
		root := tr.RootName()
		c.needs.vars |= varBits[root]
		if root != "new" && root != "old" {
			continue
		}
		attr, ok := config.TraversalColumn(tr)
		switch {
		case root == "new" && !ok:
			newAll = true
		case root == "new":
			c.needs.newAttrs = appendUnique(c.needs.newAttrs, attr)
		case !ok:
			oldAll = true
		default:
			c.needs.oldAttrs = appendUnique(c.needs.oldAttrs, attr)
		}
	}
	if newAll {
		c.needs.newAttrs = nil
	}
	if oldAll {
		c.needs.oldAttrs = nil
	}
	return c
}

// union is what n and o read together.
func (n needs) union(o needs) needs {
	u := needs{vars: n.vars | o.vars}
	u.newAttrs = unionAttrs(n.vars&needNew != 0, n.newAttrs, o.vars&needNew != 0, o.newAttrs)
	u.oldAttrs = unionAttrs(n.vars&needOld != 0, n.oldAttrs, o.vars&needOld != 0, o.oldAttrs)
	return u
}

// unionAttrs unites two column lists where nil means every column (when the
// variable is read at all).
func unionAttrs(aUsed bool, a []string, bUsed bool, b []string) []string {
	switch {
	case !aUsed:
		return b
	case !bUsed:
		return a
	case a == nil || b == nil:
		return nil
	}
	out := append([]string(nil), a...)
	for _, s := range b {
		out = appendUnique(out, s)
	}
	return out
}

func appendUnique(list []string, s string) []string {
	if containsString(list, s) {
		return list
	}
	return append(list, s)
}

// opIndex maps an op to its slot in tableRules.byOp, or -1.
func opIndex(op cdc.Op) int {
	switch op {
	case cdc.OpInsert:
		return 0
	case cdc.OpUpdate:
		return 1
	case cdc.OpDelete:
		return 2
	case cdc.OpTruncate:
		return 3
	case cdc.OpRead:
		return 4
	}
	return -1
}

// Catalogue lists the event types the config produces: the rules' in
// config order, then those the outbox block declares.
func (r *Rules) Catalogue() []EventInfo {
	out := make([]EventInfo, len(r.rules), len(r.rules)+len(r.outbox))
	for i, ru := range r.rules {
		out[i] = ru.info
		out[i].Ops = append([]string(nil), ru.info.Ops...)
	}
	for _, e := range r.outbox {
		e.Ops = []string{}
		out = append(out, e)
	}
	return out
}
