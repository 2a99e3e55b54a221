package rules

import (
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/relay/event"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

var opVals = map[cdc.Op]cty.Value{
	cdc.OpInsert: cty.StringVal("insert"), cdc.OpUpdate: cty.StringVal("update"),
	cdc.OpDelete: cty.StringVal("delete"), cdc.OpTruncate: cty.StringVal("truncate"),
}

var nullVal = cty.NullVal(cty.DynamicPseudoType)

// Evaluate appends to out the events the rules make from c, in config
// order, and returns them with the failures of rules that could not be
// evaluated on c. A change of a table or op no rule names yields nothing.
func (r *Rules) Evaluate(c *cdc.Change, out []event.Event) ([]event.Event, []event.Failure) {
	byTable := r.tables[c.Schema]
	if byTable == nil {
		return out, nil
	}
	tr := byTable[c.Table]
	i := opIndex(c.Op)
	if tr == nil || i < 0 || len(tr.byOp[i]) == 0 {
		return out, nil
	}
	s := scope{r: r, c: c}
	var failures []event.Failure
	for _, ru := range tr.byOp[i] {
		ev, ok, err := s.apply(ru)
		if err != nil {
			failures = append(failures, s.failure(ru, err))
			continue
		}
		if ok {
			out = append(out, ev)
		}
	}
	return out, failures
}

// scope holds one change and the values derived from it, built on first use
// and shared by the rules that run on the change.
type scope struct {
	r *Rules
	c *cdc.Change

	table   string
	key     *string
	row     []byte // default data
	newFull cty.Value
	oldFull cty.Value
	changed cty.Value
	tx      cty.Value
}

// apply runs one rule on the change: ok is false when its when is false.
func (s *scope) apply(ru *rule) (ev event.Event, ok bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("internal error evaluating the rule: %v", p)
		}
	}()
	if ru.when != nil {
		v, err := s.eval(ru.when)
		if err != nil {
			return ev, false, fmt.Errorf("evaluating when: %w", err)
		}
		if v.IsNull() {
			return ev, false, fmt.Errorf("evaluating when: the result is null, not a bool (compare with null explicitly, or use try() or coalesce())")
		}
		b, cerr := convert.Convert(v, cty.Bool)
		if cerr != nil {
			return ev, false, fmt.Errorf("evaluating when: the result must be a bool, not %s", v.Type().FriendlyName())
		}
		if b.IsNull() || b.False() {
			return ev, false, nil
		}
	}
	c := s.c
	ev = event.Event{
		ID:        event.NewID(c.CommitLSN, c.Position, ru.name),
		Type:      ru.name,
		Timestamp: c.CommitTime,
		Table:     ru.table,
		CommitLSN: c.CommitLSN,
		EndLSN:    c.EndLSN,
		Position:  c.Position,
	}
	if ru.key != nil {
		if ev.Key, err = s.text(ru.key, "key"); err != nil {
			return ev, false, err
		}
	} else {
		ev.Key = s.defaultKey()
	}
	if ru.tenant != nil {
		if ev.Tenant, err = s.text(ru.tenant, "tenant"); err != nil {
			return ev, false, err
		}
	}
	if ru.data != nil {
		v, err := s.eval(ru.data)
		if err != nil {
			return ev, false, fmt.Errorf("evaluating data: %w", err)
		}
		if ev.Data, err = appendCty(nil, v, c.Columns); err != nil {
			return ev, false, fmt.Errorf("writing data as JSON: %w", err)
		}
	} else {
		ev.Data = s.defaultData()
	}
	return ev, true, nil
}

// text evaluates a key or tenant expression to text; null is "".
func (s *scope) text(ce *compiledExpr, what string) (string, error) {
	v, err := s.eval(ce)
	if err != nil {
		return "", fmt.Errorf("evaluating %s: %w", what, err)
	}
	if v.IsNull() {
		return "", nil
	}
	switch v.Type() {
	case cty.String:
		return v.AsString(), nil
	case cty.Number:
		b, err := appendNumber(nil, v.AsBigFloat())
		return string(b), err
	case cty.Bool:
		if v.True() {
			return "true", nil
		}
		return "false", nil
	}
	return "", fmt.Errorf("evaluating %s: the result must be a string or number, not %s", what, v.Type().FriendlyName())
}

// eval evaluates an expression with the variables it reads.
func (s *scope) eval(ce *compiledExpr) (cty.Value, error) {
	vars := make(map[string]cty.Value, 4)
	n := ce.needs
	var err error
	if n.vars&needNew != 0 {
		if vars["new"], err = s.rowVal(s.c.New, n.newAttrs, &s.newFull); err != nil {
			return cty.NilVal, fmt.Errorf("reading new: %w", err)
		}
	}
	if n.vars&needOld != 0 {
		if vars["old"], err = s.rowVal(s.c.Old, n.oldAttrs, &s.oldFull); err != nil {
			return cty.NilVal, fmt.Errorf("reading old: %w", err)
		}
	}
	if n.vars&needOp != 0 {
		vars["op"] = opVals[s.c.Op]
	}
	if n.vars&needTable != 0 {
		vars["table"] = cty.StringVal(s.tableName())
	}
	if n.vars&needTx != 0 {
		vars["tx"] = s.txVal()
	}
	if n.vars&needChanged != 0 {
		vars["changed"] = s.changedVal()
	}
	ctx := s.r.base.NewChild()
	ctx.Variables = vars
	v, diags := ce.expr.Value(ctx)
	if diags.HasErrors() {
		return cty.NilVal, diagError(diags)
	}
	if !v.IsWhollyKnown() {
		return cty.NilVal, fmt.Errorf("the result is not known")
	}
	v, _ = v.UnmarkDeep()
	return v, nil
}

// rowVal is new or old as a cty object: null when row is nil, else all its
// columns, or only attrs when the expression reads only those.
func (s *scope) rowVal(row map[string]any, attrs []string, full *cty.Value) (cty.Value, error) {
	if row == nil {
		return nullVal, nil
	}
	if full.Type() != cty.NilType {
		return *full, nil
	}
	if attrs != nil {
		return objectVal(row, attrs)
	}
	v, err := objectVal(row, nil)
	if err != nil {
		return cty.NilVal, err
	}
	*full = v
	return v, nil
}

func (s *scope) tableName() string {
	if s.table == "" {
		s.table = s.c.Schema + "." + s.c.Table
	}
	return s.table
}

func (s *scope) txVal() cty.Value {
	if s.tx.Type() == cty.NilType {
		s.tx = cty.ObjectVal(map[string]cty.Value{
			"id":          cty.NumberUIntVal(uint64(s.c.XID)),
			"lsn":         cty.StringVal(s.c.CommitLSN.String()),
			"commit_time": cty.StringVal(s.c.CommitTime.UTC().Format(time.RFC3339Nano)),
		})
	}
	return s.tx
}

// changedVal is the changed variable: see the package documentation.
func (s *scope) changedVal() cty.Value {
	if s.changed.Type() != cty.NilType {
		return s.changed
	}
	c := s.c
	if c.Op != cdc.OpUpdate || !c.OldFull || c.Old == nil || c.New == nil {
		s.changed = cty.NullVal(cty.List(cty.String))
		return s.changed
	}
	var names []cty.Value
	diff := func(col string) {
		nv, ok := c.New[col]
		if !ok || containsString(c.Unchanged, col) {
			return
		}
		ov, had := c.Old[col]
		if !had || !valuesEqual(ov, nv) {
			names = append(names, cty.StringVal(col))
		}
	}
	for _, col := range c.Columns {
		diff(col)
	}
	if len(c.Columns) == 0 {
		for _, col := range sortedKeys(c.New) {
			diff(col)
		}
	}
	if len(names) == 0 {
		s.changed = cty.ListValEmpty(cty.String)
	} else {
		s.changed = cty.ListVal(names)
	}
	return s.changed
}

// defaultKey is the replica identity columns' values joined with ":".
func (s *scope) defaultKey() string {
	if s.key != nil {
		return *s.key
	}
	row := s.c.New
	if s.c.Op == cdc.OpDelete || row == nil {
		row = s.c.Old
	}
	var k string
	switch {
	case row == nil || len(s.c.Key) == 0:
	case len(s.c.Key) == 1:
		k = valueText(row[s.c.Key[0]])
	default:
		parts := make([]string, len(s.c.Key))
		for i, col := range s.c.Key {
			parts[i] = valueText(row[col])
		}
		k = strings.Join(parts, ":")
	}
	s.key = &k
	return k
}

// defaultData is new (old on delete) as JSON, or null on truncate.
func (s *scope) defaultData() []byte {
	if s.row == nil {
		row := s.c.New
		if s.c.Op == cdc.OpDelete || row == nil {
			row = s.c.Old
		}
		if row == nil {
			s.row = []byte("null")
		} else {
			s.row = appendRow(make([]byte, 0, 256), row, s.c.Columns)
		}
	}
	return s.row
}

func (s *scope) failure(ru *rule, err error) event.Failure {
	c := s.c
	return event.Failure{
		Rule: ru.name, Table: s.tableName(), Op: c.Op, XID: c.XID,
		CommitLSN: c.CommitLSN, EndLSN: c.EndLSN, Position: c.Position,
		Error: err.Error(), Row: s.defaultData(),
	}
}

// diagError joins HCL diagnostics into one error, with their positions.
func diagError(diags hcl.Diagnostics) error {
	var parts []string
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		msg := d.Summary
		if d.Detail != "" {
			msg += ": " + d.Detail
		}
		if d.Subject != nil {
			msg = d.Subject.String() + ": " + msg
		}
		parts = append(parts, msg)
	}
	return fmt.Errorf("%s", strings.Join(parts, "; "))
}
