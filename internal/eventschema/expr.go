package eventschema

import (
	"math/big"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// scope maps the variables an expression may read to their schemas.
type scope map[string]*Schema

// with is s plus one more variable (a for expression's iterator).
func (s scope) with(name string, v *Schema) scope {
	out := make(scope, len(s)+1)
	for k, x := range s {
		out[k] = x
	}
	out[name] = v
	return out
}

// exprSchema describes the values expr can produce when it evaluates
// without error in sc, as precisely as its shape allows: literals, objects
// and lists built in place, attributes of rows and columns, conditionals,
// merge, coalesce, try and functions of a known result type. Anything else
// is {} (any value).
func exprSchema(expr hcl.Expression, sc scope) *Schema {
	switch e := expr.(type) {
	case *hclsyntax.ParenthesesExpr:
		return exprSchema(e.Expression, sc)
	case *hclsyntax.LiteralValueExpr:
		return literalSchema(e.Val)
	case *hclsyntax.TemplateExpr:
		if e.IsStringLiteral() {
			if v, diags := e.Value(nil); !diags.HasErrors() {
				return literalSchema(v)
			}
		}
		return typed("string")
	case *hclsyntax.TemplateWrapExpr:
		// "${x}" is x itself, not converted to a string.
		return exprSchema(e.Wrapped, sc)
	case *hclsyntax.ScopeTraversalExpr:
		root, ok := sc[e.Traversal.RootName()]
		if !ok {
			return &Schema{}
		}
		return traverse(root, e.Traversal[1:])
	case *hclsyntax.RelativeTraversalExpr:
		return traverse(exprSchema(e.Source, sc), e.Traversal)
	case *hclsyntax.IndexExpr:
		key, ok := literalKey(e.Key)
		if !ok {
			return &Schema{}
		}
		return traverse(exprSchema(e.Collection, sc), hcl.Traversal{hcl.TraverseIndex{Key: key}})
	case *hclsyntax.ObjectConsExpr:
		return objectSchema(e, sc)
	case *hclsyntax.TupleConsExpr:
		s := &Schema{Type: Types{"array"}, MinItems: intPtr(len(e.Exprs)), MaxItems: intPtr(len(e.Exprs))}
		for _, x := range e.Exprs {
			s.PrefixItems = append(s.PrefixItems, exprSchema(x, sc))
		}
		return s
	case *hclsyntax.ConditionalExpr:
		return oneOfThese(exprSchema(e.TrueResult, sc), exprSchema(e.FalseResult, sc))
	case *hclsyntax.BinaryOpExpr:
		switch e.Op {
		case hclsyntax.OpAdd, hclsyntax.OpSubtract, hclsyntax.OpMultiply, hclsyntax.OpDivide, hclsyntax.OpModulo:
			return typed("number")
		}
		return typed("boolean")
	case *hclsyntax.UnaryOpExpr:
		if e.Op == hclsyntax.OpNegate {
			return typed("number")
		}
		return typed("boolean")
	case *hclsyntax.FunctionCallExpr:
		return callSchema(e, sc)
	case *hclsyntax.ForExpr:
		iter := &Schema{}
		if coll := exprSchema(e.CollExpr, sc); coll.Items != nil {
			iter = coll.Items
		}
		inner := sc.with(e.ValVar, iter)
		if e.KeyVar != "" {
			inner = inner.with(e.KeyVar, &Schema{})
		}
		if e.KeyExpr != nil {
			return typed("object")
		}
		return &Schema{Type: Types{"array"}, Items: exprSchema(e.ValExpr, inner)}
	case *hclsyntax.SplatExpr:
		return typed("array")
	}
	return &Schema{}
}

// literalSchema is the const schema of a literal value.
func literalSchema(v cty.Value) *Schema {
	if v.IsNull() {
		return typed("null")
	}
	if !v.IsWhollyKnown() {
		return &Schema{}
	}
	b, err := ctyjson.Marshal(v, v.Type())
	if err != nil {
		return &Schema{}
	}
	return &Schema{Const: b}
}

// literalKey is the value of an index key written as a literal.
func literalKey(expr hcl.Expression) (cty.Value, bool) {
	switch e := expr.(type) {
	case *hclsyntax.LiteralValueExpr:
		return e.Val, true
	case *hclsyntax.TemplateExpr:
		if e.IsStringLiteral() {
			v, diags := e.Value(nil)
			return v, !diags.HasErrors()
		}
	}
	return cty.NilVal, false
}

// traverse follows attribute and index steps into s. A step into null is an
// error at run time (no delivery), so only non-null branches are followed.
func traverse(s *Schema, steps hcl.Traversal) *Schema {
	for _, step := range steps {
		var name string
		var index = -1
		switch st := step.(type) {
		case hcl.TraverseAttr:
			name = st.Name
		case hcl.TraverseIndex:
			switch {
			case st.Key.Type() == cty.String && st.Key.IsKnown() && !st.Key.IsNull():
				name = st.Key.AsString()
			case st.Key.Type() == cty.Number && st.Key.IsKnown() && !st.Key.IsNull():
				i, acc := st.Key.AsBigFloat().Int64()
				if acc != big.Exact || i < 0 {
					return &Schema{}
				}
				index = int(i)
			default:
				return &Schema{}
			}
		default:
			return &Schema{}
		}
		s = step1(s, name, index)
	}
	return s
}

// step1 is the schema of s's property name, or of its element index when
// index >= 0.
func step1(s *Schema, name string, index int) *Schema {
	if s.AnyOf != nil {
		var out []*Schema
		for _, o := range s.AnyOf {
			if o.isNull() {
				continue
			}
			out = append(out, step1(o, name, index))
		}
		if len(out) == 0 {
			return &Schema{}
		}
		return oneOfThese(out...)
	}
	if index >= 0 {
		if index < len(s.PrefixItems) {
			return s.PrefixItems[index]
		}
		if s.Items != nil {
			return s.Items
		}
		return &Schema{}
	}
	if p := s.Properties.Get(name); p != nil {
		return p
	}
	return &Schema{}
}

// objectSchema describes an object constructor: closed with every key
// when all keys are literal names, else an open object.
func objectSchema(e *hclsyntax.ObjectConsExpr, sc scope) *Schema {
	s := &Schema{Type: Types{"object"}, AdditionalProperties: boolPtr(false), Properties: Properties{}}
	for _, it := range e.Items {
		key := hcl.ExprAsKeyword(it.KeyExpr)
		if key == "" {
			if k, ok := it.KeyExpr.(*hclsyntax.ObjectConsKeyExpr); ok && !k.ForceNonLiteral {
				if v, ok := literalKey(k.Wrapped); ok && v.Type() == cty.String {
					key = v.AsString()
				}
			}
		}
		if key == "" {
			return typed("object")
		}
		s.Properties = s.Properties.set(key, exprSchema(it.ValueExpr, sc))
		s.Required = appendUnique(s.Required, key)
	}
	return s
}

// callSchema describes a function call's result.
func callSchema(e *hclsyntax.FunctionCallExpr, sc scope) *Schema {
	args := func() []*Schema {
		out := make([]*Schema, len(e.Args))
		for i, a := range e.Args {
			out[i] = exprSchema(a, sc)
		}
		return out
	}
	if e.ExpandFinal {
		return &Schema{}
	}
	switch e.Name {
	case "merge":
		return mergeSchema(args())
	case "try":
		return oneOfThese(args()...)
	case "coalesce":
		var out []*Schema
		for _, a := range args() {
			if w := withoutNull(a); w != nil {
				out = append(out, w)
			}
		}
		if len(out) == 0 {
			return &Schema{}
		}
		return oneOfThese(out...)
	case "tostring", "tonumber", "tobool":
		want := map[string]string{"tostring": "string", "tonumber": "number", "tobool": "boolean"}[e.Name]
		if len(e.Args) == 1 {
			if a := exprSchema(e.Args[0], sc); a.isNull() || a.hasType("null") || a.isAny() || a.AnyOf != nil {
				return typed(want, "null")
			}
		}
		return typed(want)
	case "length", "strlen", "parseint", "signum", "int", "ceil", "floor":
		// Whole numbers, written without a fraction (docs/config.md, "Exact numbers").
		return typed("integer")
	case "abs", "max", "min", "pow", "log":
		return typed("number")
	case "can", "contains":
		return typed("boolean")
	case "chomp", "format", "indent", "join", "lower", "upper", "title", "regex_replace", "replace",
		"strrev", "substr", "trim", "trimprefix", "trimsuffix", "trimspace", "jsonencode", "formatdate",
		"timeadd", "env":
		return typed("string")
	case "formatlist", "split", "keys", "regexall", "range":
		return typed("array")
	case "concat", "compact", "distinct", "flatten", "reverse", "slice", "sort", "coalescelist", "tolist", "toset", "values", "csvdecode":
		return typed("array")
	case "zipmap", "tomap":
		return typed("object")
	}
	return &Schema{}
}

// mergeSchema describes merge(args...): later objects' properties replace
// earlier ones'; null arguments are skipped. Unless every argument is a
// closed object (or null), the result is an open object.
func mergeSchema(args []*Schema) *Schema {
	out := &Schema{Type: Types{"object"}, AdditionalProperties: boolPtr(false), Properties: Properties{}}
	for _, a := range args {
		if a.isNull() {
			continue
		}
		if !a.closedObject() {
			return typed("object")
		}
		for _, p := range a.Properties {
			prev := out.Properties.Get(p.Name)
			if prev != nil && !contains(a.Required, p.Name) {
				// a may lack it: the earlier value stays then.
				out.Properties = out.Properties.set(p.Name, oneOfThese(prev, p.Schema))
				continue
			}
			out.Properties = out.Properties.set(p.Name, p.Schema)
		}
		for _, r := range a.Required {
			out.Required = appendUnique(out.Required, r)
		}
	}
	return out
}

func appendUnique(list []string, s string) []string {
	if contains(list, s) {
		return list
	}
	return append(list, s)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
