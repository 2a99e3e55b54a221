package rules

import (
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/event"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

var opVals = map[cdc.Op]cty.Value{
	cdc.OpInsert: cty.StringVal("insert"), cdc.OpUpdate: cty.StringVal("update"),
	cdc.OpDelete: cty.StringVal("delete"), cdc.OpTruncate: cty.StringVal("truncate"),
	cdc.OpRead: cty.StringVal("read"),
}

var nullVal = cty.NullVal(cty.DynamicPseudoType)

// Evaluate appends to out the events the rules make from c, in config
// order, and returns them with the failures of rules that could not be
// evaluated on c. A change of a table or op no rule names yields nothing.
func (r *Rules) Evaluate(c *cdc.Change, out []event.Event) ([]event.Event, []event.Failure) {
	return r.evaluate(c, "", out)
}

// EvaluateRule is Evaluate limited to the rules named rule (the event
// name): what a replay of a failed evaluation runs.
func (r *Rules) EvaluateRule(c *cdc.Change, rule string, out []event.Event) ([]event.Event, []event.Failure) {
	if rule == "" {
		return out, nil
	}
	return r.evaluate(c, rule, out)
}

func (r *Rules) evaluate(c *cdc.Change, only string, out []event.Event) ([]event.Event, []event.Failure) {
	byTable := r.tables[c.Schema]
	if byTable == nil {
		return out, nil
	}
	tr := byTable[c.Table]
	i := opIndex(c.Op)
	if tr == nil || i < 0 || len(tr.byOp[i]) == 0 {
		return out, nil
	}
	s := scope{r: r, c: c, tr: tr, needs: &tr.needs[i]}
	var failures []event.Failure
	for _, ru := range tr.byOp[i] {
		if only != "" && ru.name != only {
			continue
		}
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
	r     *Rules
	c     *cdc.Change
	tr    *tableRules
	needs *needs // what the rules of this table and op read
	ctx   *hcl.EvalContext

	table   string
	key     string // default key, once keyDone
	keyDone bool
	row     []byte // default data
	changed cty.Value

	changedDone  bool
	changedKnown bool
	changedList  []string
	tx           cty.Value
}

// apply runs one rule on the change: ok is false when its when is false.
func (s *scope) apply(ru *rule) (ev event.Event, ok bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("internal error evaluating the rule: %v", p)
		}
	}()
	if ru.when != nil {
		if ru.when.fast != nil {
			if v, ok := ru.when.fast(s); ok {
				if b, isBool := v.(bool); isBool {
					if !b {
						return ev, false, nil
					}
					goto matched
				}
			}
		}
		v, err := s.eval(ru.when)
		if err != nil {
			return ev, false, fmt.Errorf("evaluating when: %w", err)
		}
		v, _ = v.UnmarkDeep()
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
matched:
	c := s.c
	ev = event.Event{
		ID:        event.NewID(c.CommitLSN, c.Position, ru.name),
		Type:      ru.name,
		Timestamp: c.CommitTime,
		Table:     ru.table,
		Op:        c.Op,
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
	if ru.data != nil && ru.fastData != nil {
		if b, ok := ru.fastData(s, make([]byte, 0, 256)); ok {
			ev.Data = b
			return ev, true, nil
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
	if ce.fast != nil {
		if v, ok := ce.fast(s); ok {
			if t, ok := fastText(v); ok {
				return t, nil
			}
		}
	}
	v, err := s.eval(ce)
	if err != nil {
		return "", fmt.Errorf("evaluating %s: %w", what, err)
	}
	if v.IsNull() {
		return "", nil
	}
	v, marks := v.UnmarkDeep()
	switch v.Type() {
	case cty.String:
		return v.AsString(), nil
	case cty.Number:
		if t, ok := exactText(v.AsBigFloat(), marks); ok {
			return t, nil
		}
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

// eval evaluates an expression. The variables are built once per change,
// for every rule of its table and op.
func (s *scope) eval(ce *compiledExpr) (cty.Value, error) {
	if s.ctx == nil {
		vars, err := s.variables()
		if err != nil {
			return cty.NilVal, err
		}
		s.ctx = s.r.base.NewChild()
		s.ctx.Variables = vars
	}
	v, diags := ce.expr.Value(s.ctx)
	if diags.HasErrors() {
		return cty.NilVal, diagError(diags)
	}
	if !v.IsKnown() {
		return cty.NilVal, fmt.Errorf("the result is not known")
	}
	return v, nil
}

// variables builds the variables the change's rules read.
func (s *scope) variables() (map[string]cty.Value, error) {
	vars := make(map[string]cty.Value, 6)
	n := s.needs
	if n.vars&needNew != 0 {
		v, err := rowVal(s.c.New, n.newAttrs)
		if err != nil {
			return nil, fmt.Errorf("reading new: %w", err)
		}
		vars["new"] = v
	}
	if n.vars&needOld != 0 {
		v, err := rowVal(s.c.Old, n.oldAttrs)
		if err != nil {
			return nil, fmt.Errorf("reading old: %w", err)
		}
		vars["old"] = v
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
	return vars, nil
}

// rowVal is new or old as a cty object: null when row is nil, else all its
// columns, or only attrs when the rules read only those.
func rowVal(row map[string]any, attrs []string) (cty.Value, error) {
	if row == nil {
		return nullVal, nil
	}
	return objectVal(row, attrs)
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
	names, known := s.changedNames()
	switch {
	case !known:
		s.changed = cty.NullVal(cty.List(cty.String))
	case len(names) == 0:
		s.changed = cty.ListValEmpty(cty.String)
	default:
		vals := make([]cty.Value, len(names))
		for i, n := range names {
			vals[i] = cty.StringVal(n)
		}
		s.changed = cty.ListVal(vals)
	}
	return s.changed
}

// changedNames lists the columns an update changed, in table order; known
// is false unless the change is an update with the whole old row.
func (s *scope) changedNames() (names []string, known bool) {
	if s.changedDone {
		return s.changedList, s.changedKnown
	}
	s.changedDone = true
	c := s.c
	if c.Op != cdc.OpUpdate || !c.OldFull || c.Old == nil || c.New == nil {
		return nil, false
	}
	diff := func(col string) {
		nv, ok := c.New[col]
		if !ok || containsString(c.Unchanged, col) {
			return
		}
		ov, had := c.Old[col]
		if !had || !valuesEqual(ov, nv) {
			names = append(names, col)
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
	s.changedList, s.changedKnown = names, true
	return names, true
}

// defaultKey is the replica identity columns' values joined with ":".
func (s *scope) defaultKey() string {
	if s.keyDone {
		return s.key
	}
	row := s.c.New
	if s.c.Op == cdc.OpDelete || row == nil {
		row = s.c.Old
	}
	var k string
	switch {
	case row == nil || len(s.c.Key) == 0:
	case len(s.c.Key) == 1:
		k = ValueText(row[s.c.Key[0]])
	default:
		parts := make([]string, len(s.c.Key))
		for i, col := range s.c.Key {
			parts[i] = ValueText(row[col])
		}
		k = strings.Join(parts, ":")
	}
	s.key, s.keyDone = k, true
	return k
}

// defaultData is new (old on delete) as JSON, or on truncate the table and
// the operation: {"table": "schema.table", "op": "truncate"}.
func (s *scope) defaultData() []byte {
	if s.row == nil {
		row := s.c.New
		if s.c.Op == cdc.OpDelete || row == nil {
			row = s.c.Old
		}
		switch {
		case s.c.Op == cdc.OpTruncate:
			s.row = truncateData(s.tableName())
		case row == nil:
			s.row = []byte("null")
		default:
			// Rows of a table are alike: room for the last one and an
			// eighth is one allocation, where growing from 256 bytes
			// took two on a wide row.
			last := int(s.tr.rowBytes.Load())
			s.row = appendRow(make([]byte, 0, max(256, last+last/8)), row, s.c.Columns)
			s.tr.rowBytes.Store(int64(len(s.row)))
		}
	}
	return s.row
}

// truncateData is the default data of a truncate event.
func truncateData(table string) []byte {
	b := appendString([]byte(`{"table":`), table)
	return append(b, `,"op":"truncate"}`...)
}

// failure records that rule ru failed on the change, with a copy of the
// change (its rows cloned) for a replay after a fix.
func (s *scope) failure(ru *rule, err error) event.Failure {
	c := s.c
	cp := *c
	cp.New, cp.Old = maps.Clone(c.New), maps.Clone(c.Old)
	f := event.Failure{
		Rule: ru.name, Table: s.tableName(), Op: c.Op, XID: c.XID,
		CommitLSN: c.CommitLSN, EndLSN: c.EndLSN, Position: c.Position,
		Error: err.Error(), Row: s.defaultData(),
		EventType: ru.name, EventID: event.NewID(c.CommitLSN, c.Position, ru.name), Change: &cp,
	}
	if c.Op == cdc.OpUpdate && c.Old != nil {
		f.Old = appendRow(make([]byte, 0, 128), c.Old, c.Columns)
	}
	return f
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
