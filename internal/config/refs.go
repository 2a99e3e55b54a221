package config

import (
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// ColumnRef is a column an event's expressions read: new.X or old.X.
type ColumnRef struct {
	Row    string // "new" or "old"
	Column string
	Range  hcl.Range
}

// RowReads says what an event's expressions read of the changed row.
type RowReads struct {
	Columns []ColumnRef
	// WholeOld is where old is used as a whole (merge(old, ...)), if it is.
	WholeOld *hcl.Range
	// Changed is where the changed variable is read, if it is.
	Changed *hcl.Range
}

// Reads lists the columns e's expressions read and whether they read old
// as a whole or changed.
func (e *Event) Reads() RowReads {
	var r RowReads
	for _, expr := range []hcl.Expression{e.When, e.Key, e.Tenant, e.Data} {
		if expr == nil {
			continue
		}
		for _, tr := range expr.Variables() {
			rng := tr.SourceRange()
			root := tr.RootName()
			switch root {
			case "changed":
				if r.Changed == nil {
					r.Changed = &rng
				}
			case "new", "old":
				col, ok := TraversalColumn(tr)
				if !ok {
					if root == "old" && r.WholeOld == nil {
						r.WholeOld = &rng
					}
					continue
				}
				r.Columns = append(r.Columns, ColumnRef{Row: root, Column: col, Range: rng})
			}
		}
	}
	return r
}

// TraversalColumn is the column a traversal like new.stage or
// new["stage"] reads.
func TraversalColumn(tr hcl.Traversal) (string, bool) {
	if len(tr) < 2 {
		return "", false
	}
	switch step := tr[1].(type) {
	case hcl.TraverseAttr:
		return step.Name, true
	case hcl.TraverseIndex:
		if step.Key.Type() == cty.String && step.Key.IsKnown() && !step.Key.IsNull() {
			return step.Key.AsString(), true
		}
	}
	return "", false
}
