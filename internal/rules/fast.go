package rules

import (
	"encoding/json"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/walhook/walhook/cdc"
	"github.com/zclconf/go-cty/cty"
)

// The fast path evaluates the most common rule shapes (new.x != old.x,
// old.x == null && new.x != null, length(changed) > 0, key = new.id,
// data = merge(new, {k = old.x})) straight on the change's Go values, with no
// cty values built. Whenever it meets anything it does not handle exactly as
// HCL would (an error, a JSON column, a non-ASCII string compared, a float),
// it says so and the expression is evaluated by HCL instead. FuzzEvaluate
// checks that both paths agree.

// fastFunc evaluates an expression on the change; ok is false when the fast
// path cannot decide and HCL must evaluate it.
type fastFunc func(s *scope) (v any, ok bool)

// fastData writes an expression's result as JSON; ok as for fastFunc.
type fastData func(s *scope, b []byte) ([]byte, bool)

// compileFast returns the fast evaluator of expr, or nil when its shape is
// not one the fast path handles.
func compileFast(expr hcl.Expression) fastFunc {
	switch e := expr.(type) {
	case *hclsyntax.ParenthesesExpr:
		return compileFast(e.Expression)
	case *hclsyntax.LiteralValueExpr:
		v, ok := literal(e.Val)
		if !ok {
			return nil
		}
		return func(*scope) (any, bool) { return v, true }
	case *hclsyntax.TemplateExpr:
		if len(e.Parts) != 1 {
			return nil
		}
		lit, ok := e.Parts[0].(*hclsyntax.LiteralValueExpr)
		if !ok || lit.Val.Type() != cty.String {
			return nil
		}
		v := lit.Val.AsString()
		if !isASCII(v) {
			return nil
		}
		return func(*scope) (any, bool) { return v, true }
	case *hclsyntax.ScopeTraversalExpr:
		return compileTraversal(e.Traversal)
	case *hclsyntax.UnaryOpExpr:
		if e.Op != hclsyntax.OpLogicalNot {
			return nil
		}
		x := compileFast(e.Val)
		if x == nil {
			return nil
		}
		return func(s *scope) (any, bool) {
			v, ok := x(s)
			b, isBool := v.(bool)
			if !ok || !isBool {
				return nil, false
			}
			return !b, true
		}
	case *hclsyntax.BinaryOpExpr:
		return compileBinary(e)
	case *hclsyntax.FunctionCallExpr:
		// length(changed)
		if e.Name != "length" || len(e.Args) != 1 || e.ExpandFinal {
			return nil
		}
		arg, ok := e.Args[0].(*hclsyntax.ScopeTraversalExpr)
		if !ok || len(arg.Traversal) != 1 || arg.Traversal.RootName() != "changed" {
			return nil
		}
		return func(s *scope) (any, bool) {
			names, known := s.changedNames()
			if !known {
				return nil, false
			}
			return int64(len(names)), true
		}
	}
	return nil
}

// literal converts a primitive HCL literal to the fast path's Go values.
func literal(v cty.Value) (any, bool) {
	if v.IsNull() {
		return nil, true
	}
	switch v.Type() {
	case cty.Bool:
		return v.True(), true
	case cty.Number:
		if i, acc := v.AsBigFloat().Int64(); acc == 0 && v.AsBigFloat().IsInt() {
			return i, true
		}
	case cty.String:
		if s := v.AsString(); isASCII(s) {
			return s, true
		}
	}
	return nil, false
}

func compileTraversal(tr hcl.Traversal) fastFunc {
	switch root := tr.RootName(); {
	case root == "op" && len(tr) == 1:
		return func(s *scope) (any, bool) { return string(s.c.Op), true }
	case root == "table" && len(tr) == 1:
		return func(s *scope) (any, bool) { return s.tableName(), true }
	case (root == "new" || root == "old") && len(tr) == 2:
		attr, ok := tr[1].(hcl.TraverseAttr)
		if !ok {
			return nil
		}
		isNew, name := root == "new", attr.Name
		return func(s *scope) (any, bool) {
			row := s.c.Old
			if isNew {
				row = s.c.New
			}
			v, present := row[name]
			if !present { // a null row or a missing column: HCL says which
				return nil, false
			}
			return v, true
		}
	}
	return nil
}

func compileBinary(e *hclsyntax.BinaryOpExpr) fastFunc {
	l, r := compileFast(e.LHS), compileFast(e.RHS)
	if l == nil || r == nil {
		return nil
	}
	switch e.Op {
	case hclsyntax.OpEqual, hclsyntax.OpNotEqual:
		neq := e.Op == hclsyntax.OpNotEqual
		return func(s *scope) (any, bool) {
			a, ok1 := l(s)
			b, ok2 := r(s)
			if !ok1 || !ok2 {
				return nil, false
			}
			eq, ok := fastEqual(a, b)
			if !ok {
				return nil, false
			}
			return eq != neq, true
		}
	case hclsyntax.OpLogicalAnd, hclsyntax.OpLogicalOr:
		and := e.Op == hclsyntax.OpLogicalAnd
		return func(s *scope) (any, bool) {
			a, ok1 := l(s)
			b, ok2 := r(s)
			x, isBool1 := a.(bool)
			y, isBool2 := b.(bool)
			if !ok1 || !ok2 || !isBool1 || !isBool2 {
				return nil, false
			}
			if and {
				return x && y, true
			}
			return x || y, true
		}
	case hclsyntax.OpGreaterThan, hclsyntax.OpGreaterThanOrEqual, hclsyntax.OpLessThan, hclsyntax.OpLessThanOrEqual:
		op := e.Op
		return func(s *scope) (any, bool) {
			a, ok1 := l(s)
			b, ok2 := r(s)
			x, isInt1 := a.(int64)
			y, isInt2 := b.(int64)
			if !ok1 || !ok2 || !isInt1 || !isInt2 {
				return nil, false
			}
			switch op {
			case hclsyntax.OpGreaterThan:
				return x > y, true
			case hclsyntax.OpGreaterThanOrEqual:
				return x >= y, true
			case hclsyntax.OpLessThan:
				return x < y, true
			}
			return x <= y, true
		}
	}
	return nil
}

// fastEqual is HCL's == on the values it can decide exactly: null, bool,
// int64, ASCII strings, identical numeric text; values of different kinds
// are unequal.
func fastEqual(a, b any) (eq, ok bool) {
	if a == nil || b == nil {
		return a == nil && b == nil, true
	}
	switch x := a.(type) {
	case bool:
		switch y := b.(type) {
		case bool:
			return x == y, true
		case string, int64, json.Number:
			return false, true
		}
	case string:
		switch y := b.(type) {
		case string:
			if !isASCII(x) || !isASCII(y) {
				return false, false
			}
			return x == y, true
		case bool, int64, json.Number:
			return false, true
		}
	case int64:
		switch y := b.(type) {
		case int64:
			return x == y, true
		case json.Number:
			if i, err := strconv.ParseInt(string(y), 10, 64); err == nil {
				return x == i, true
			}
		case bool, string:
			return false, true
		}
	case json.Number:
		switch y := b.(type) {
		case json.Number:
			if x == y {
				return true, true
			}
		case int64:
			return fastEqual(b, a)
		case bool, string:
			return false, true
		}
	}
	return false, false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// fastText is a key or tenant from the fast path: text of an ASCII string
// (HCL normalizes others to NFC), int64 or bool, "" for null.
func fastText(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", true
	case string:
		return x, isASCII(x)
	case int64:
		return strconv.FormatInt(x, 10), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

// compileFastData handles data = new, merge(new, {k = v, ...}) and
// {k = v, ...} where each v has a fast path.
func compileFastData(expr hcl.Expression) fastData {
	switch e := expr.(type) {
	case *hclsyntax.ParenthesesExpr:
		return compileFastData(e.Expression)
	case *hclsyntax.ScopeTraversalExpr:
		if len(e.Traversal) == 1 && e.Traversal.RootName() == "new" {
			return mergeNew(nil)
		}
	case *hclsyntax.ObjectConsExpr:
		items := compileObject(e)
		if items == nil {
			return nil
		}
		return func(s *scope, b []byte) ([]byte, bool) {
			vals, ok := items.eval(s)
			if !ok {
				return b, false
			}
			for _, k := range items.keys {
				if indexOf(s.c.Columns, k) >= 0 {
					return b, false // HCL puts column names first, in table order
				}
			}
			return appendItems(b, items, vals, nil, nil), true
		}
	case *hclsyntax.FunctionCallExpr:
		if e.Name != "merge" || e.ExpandFinal || len(e.Args) < 1 || len(e.Args) > 2 {
			return nil
		}
		first, ok := e.Args[0].(*hclsyntax.ScopeTraversalExpr)
		if !ok || len(first.Traversal) != 1 || first.Traversal.RootName() != "new" {
			return nil
		}
		if len(e.Args) == 1 {
			return mergeNew(nil)
		}
		obj, ok := e.Args[1].(*hclsyntax.ObjectConsExpr)
		if !ok {
			return nil
		}
		items := compileObject(obj)
		if items == nil {
			return nil
		}
		return mergeNew(items)
	}
	return nil
}

// fastItems are an object constructor's literal keys, sorted, and values.
type fastItems struct {
	keys []string
	vals []fastFunc
}

func compileObject(e *hclsyntax.ObjectConsExpr) *fastItems {
	items := &fastItems{}
	seen := map[string]bool{}
	for _, it := range e.Items {
		key := hcl.ExprAsKeyword(it.KeyExpr)
		if key == "" {
			if k, ok := it.KeyExpr.(*hclsyntax.ObjectConsKeyExpr); ok && !k.ForceNonLiteral {
				if tpl, ok := k.Wrapped.(*hclsyntax.TemplateExpr); ok && tpl.IsStringLiteral() {
					v, diags := tpl.Value(nil)
					if !diags.HasErrors() {
						key = v.AsString()
					}
				}
			}
		}
		val := compileFast(it.ValueExpr)
		if key == "" || val == nil || seen[key] {
			return nil
		}
		seen[key] = true
		items.keys = append(items.keys, key)
		items.vals = append(items.vals, val)
	}
	// Sort keys (and values with them), as cty orders object attributes.
	idx := make([]int, len(items.keys))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return items.keys[idx[a]] < items.keys[idx[b]] })
	sorted := &fastItems{}
	for _, i := range idx {
		sorted.keys = append(sorted.keys, items.keys[i])
		sorted.vals = append(sorted.vals, items.vals[i])
	}
	return sorted
}

func (f *fastItems) eval(s *scope) ([]any, bool) {
	vals := make([]any, len(f.vals))
	for i, fn := range f.vals {
		v, ok := fn(s)
		if !ok {
			return nil, false
		}
		vals[i] = v
	}
	return vals, true
}

// mergeNew writes merge(new, items): new's columns in table order, those
// items override in place, the other items after them in key order.
func mergeNew(items *fastItems) fastData {
	return func(s *scope, b []byte) ([]byte, bool) {
		c := s.c
		if c.New == nil || c.Op == cdc.OpTruncate {
			return b, false
		}
		var vals []any
		if items != nil {
			var ok bool
			if vals, ok = items.eval(s); !ok {
				return b, false
			}
		}
		if len(c.Columns) == 0 || len(c.New) != len(c.Columns) || countPresent(c.New, c.Columns) != len(c.New) {
			return b, false // unlisted or absent columns: let HCL order them
		}
		b = append(b, '{')
		n := 0
		for _, col := range c.Columns {
			v, ok := c.New[col]
			if !ok {
				continue
			}
			if items != nil {
				if i := indexOf(items.keys, col); i >= 0 {
					v = vals[i]
				}
			}
			if n > 0 {
				b = append(b, ',')
			}
			b = appendString(b, col)
			b = append(b, ':')
			b = appendGo(b, v)
			n++
		}
		if items != nil {
			return appendItems(b, items, vals, c.New, &n), true
		}
		return append(b, '}'), true
	}
}

// appendItems writes the items not in skip; with n nil it writes a whole
// object, else it continues one already open (n members written) and closes it.
func appendItems(b []byte, items *fastItems, vals []any, skip map[string]any, n *int) []byte {
	count := 0
	if n == nil {
		b = append(b, '{')
	} else {
		count = *n
	}
	for i, k := range items.keys {
		if _, dup := skip[k]; dup {
			continue
		}
		if count > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendGo(b, vals[i])
		count++
	}
	return append(b, '}')
}

func countPresent(row map[string]any, cols []string) int {
	n := 0
	for _, c := range cols {
		if _, ok := row[c]; ok {
			n++
		}
	}
	return n
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}
