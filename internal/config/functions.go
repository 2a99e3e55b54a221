package config

import (
	"fmt"
	"os"
	"sort"

	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// EnvFunc is env(name[, default]): the value of an environment variable, or
// default when it is unset; unset without a default is an error.
var EnvFunc = function.New(&function.Spec{
	Description: "Returns the value of an environment variable, or the default when it is unset.",
	Params:      []function.Parameter{{Name: "name", Type: cty.String}},
	VarParam:    &function.Parameter{Name: "default", Type: cty.String},
	Type:        function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		if len(args) > 2 {
			return cty.NilVal, function.NewArgErrorf(2, "env takes a name and at most one default")
		}
		name := args[0].AsString()
		if v, ok := os.LookupEnv(name); ok {
			return cty.StringVal(v), nil
		}
		if len(args) == 2 {
			return args[1], nil
		}
		return cty.NilVal, fmt.Errorf("environment variable %s is not set and has no default; set it or write env(%q, \"default\")", name, name)
	},
})

// lengthFunc is length(value): the number of elements of a collection or
// object, or of characters of a string.
var lengthFunc = function.New(&function.Spec{
	Description: "Returns the number of elements of a collection, or characters of a string.",
	Params: []function.Parameter{{
		Name: "value", Type: cty.DynamicPseudoType, AllowDynamicType: true,
	}},
	Type: function.StaticReturnType(cty.Number),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		if args[0].Type() == cty.String {
			return stdlib.Strlen(args[0])
		}
		return stdlib.Length(args[0])
	},
})

var functions = map[string]function.Function{
	"env": EnvFunc,
	"try": tryfunc.TryFunc,
	"can": tryfunc.CanFunc,

	"length":        lengthFunc,
	"abs":           stdlib.AbsoluteFunc,
	"ceil":          stdlib.CeilFunc,
	"floor":         stdlib.FloorFunc,
	"max":           stdlib.MaxFunc,
	"min":           stdlib.MinFunc,
	"parseint":      stdlib.ParseIntFunc,
	"signum":        stdlib.SignumFunc,
	"int":           stdlib.IntFunc,
	"pow":           stdlib.PowFunc,
	"log":           stdlib.LogFunc,
	"chomp":         stdlib.ChompFunc,
	"format":        stdlib.FormatFunc,
	"formatlist":    stdlib.FormatListFunc,
	"indent":        stdlib.IndentFunc,
	"join":          stdlib.JoinFunc,
	"lower":         stdlib.LowerFunc,
	"upper":         stdlib.UpperFunc,
	"title":         stdlib.TitleFunc,
	"regex":         stdlib.RegexFunc,
	"regexall":      stdlib.RegexAllFunc,
	"regex_replace": stdlib.RegexReplaceFunc,
	"replace":       stdlib.ReplaceFunc,
	"split":         stdlib.SplitFunc,
	"strlen":        stdlib.StrlenFunc,
	"strrev":        stdlib.ReverseFunc,
	"substr":        stdlib.SubstrFunc,
	"trim":          stdlib.TrimFunc,
	"trimprefix":    stdlib.TrimPrefixFunc,
	"trimsuffix":    stdlib.TrimSuffixFunc,
	"trimspace":     stdlib.TrimSpaceFunc,
	"coalesce":      stdlib.CoalesceFunc,
	"coalescelist":  stdlib.CoalesceListFunc,
	"compact":       stdlib.CompactFunc,
	"concat":        stdlib.ConcatFunc,
	"contains":      stdlib.ContainsFunc,
	"distinct":      stdlib.DistinctFunc,
	"element":       stdlib.ElementFunc,
	"flatten":       stdlib.FlattenFunc,
	"index":         stdlib.IndexFunc,
	"keys":          stdlib.KeysFunc,
	"lookup":        stdlib.LookupFunc,
	"merge":         stdlib.MergeFunc,
	"range":         stdlib.RangeFunc,
	"reverse":       stdlib.ReverseListFunc,
	"slice":         stdlib.SliceFunc,
	"sort":          stdlib.SortFunc,
	"values":        stdlib.ValuesFunc,
	"zipmap":        stdlib.ZipmapFunc,
	"jsonencode":    stdlib.JSONEncodeFunc,
	"jsondecode":    stdlib.JSONDecodeFunc,
	"csvdecode":     stdlib.CSVDecodeFunc,
	"formatdate":    stdlib.FormatDateFunc,
	"timeadd":       stdlib.TimeAddFunc,
	"tostring":      stdlib.MakeToFunc(cty.String),
	"tonumber":      stdlib.MakeToFunc(cty.Number),
	"tobool":        stdlib.MakeToFunc(cty.Bool),
	"tolist":        stdlib.MakeToFunc(cty.List(cty.DynamicPseudoType)),
	"toset":         stdlib.MakeToFunc(cty.Set(cty.DynamicPseudoType)),
	"tomap":         stdlib.MakeToFunc(cty.Map(cty.DynamicPseudoType)),
}

// Functions returns the functions every expression may call: HCL's standard
// library, try and can, and env. The map is shared: do not modify it.
func Functions() map[string]function.Function { return functions }

// FunctionNames returns the names of Functions, sorted.
func FunctionNames() []string {
	names := make([]string, 0, len(functions))
	for n := range functions {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
