package rules

import (
	"errors"
	"math/big"

	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// Exact arithmetic for rules and bodies (see decimal.go for how numbers are
// held). HCL evaluates an operator through the package-level
// hclsyntax.Operation of its token (hclsyntax.OpAdd, ...), the same pointers
// that the config, the fast path and internal/eventschema compare
// expressions against; init replaces those operations' implementations, so
// every HCL expression this process evaluates computes exactly, whatever
// tree it sits in. The functions that compute numbers are replaced in the
// rules' function table (functions.go).

func init() {
	hclsyntax.OpAdd.Impl = exactBinary("Returns the exact sum of two numbers.", func(a, b *big.Rat) (*big.Rat, error) {
		return new(big.Rat).Add(a, b), nil
	})
	hclsyntax.OpSubtract.Impl = exactBinary("Returns the exact difference of two numbers.", func(a, b *big.Rat) (*big.Rat, error) {
		return new(big.Rat).Sub(a, b), nil
	})
	hclsyntax.OpMultiply.Impl = exactBinary("Returns the exact product of two numbers.", func(a, b *big.Rat) (*big.Rat, error) {
		return new(big.Rat).Mul(a, b), nil
	})
	hclsyntax.OpDivide.Impl = exactBinary("Returns the quotient of two numbers: exact, or rounded to 34 significant digits when it has no finite decimal.", quotient)
	hclsyntax.OpModulo.Impl = exactBinary("Returns the exact remainder of dividing two numbers, with the sign of the first.", remainder)
	hclsyntax.OpGreaterThan.Impl = exactCompare(func(c int) bool { return c > 0 })
	hclsyntax.OpGreaterThanOrEqual.Impl = exactCompare(func(c int) bool { return c >= 0 })
	hclsyntax.OpLessThan.Impl = exactCompare(func(c int) bool { return c < 0 })
	hclsyntax.OpLessThanOrEqual.Impl = exactCompare(func(c int) bool { return c <= 0 })
	hclsyntax.OpEqual.Impl = exactEqual(stdlib.EqualFunc, false)
	hclsyntax.OpNotEqual.Impl = exactEqual(stdlib.NotEqualFunc, true)
}

var errDivideByZero = errors.New("dividing by zero")

// quotient is a / b, exact when it has a finite decimal, else rounded half
// to even to quotientDigits significant digits.
func quotient(a, b *big.Rat) (*big.Rat, error) {
	if b.Sign() == 0 {
		return nil, errDivideByZero
	}
	q := new(big.Rat).Quo(a, b)
	if _, _, finite := decimalParts(q); !finite {
		q = roundSignificant(q, quotientDigits)
	}
	return q, nil
}

// remainder is a % b as cty computes it: a - b * trunc(a / b).
func remainder(a, b *big.Rat) (*big.Rat, error) {
	if b.Sign() == 0 {
		return nil, errDivideByZero
	}
	q := new(big.Rat).Quo(a, b)
	t := new(big.Int).Quo(q.Num(), q.Denom()) // truncates toward zero
	return new(big.Rat).Sub(a, new(big.Rat).Mul(b, new(big.Rat).SetInt(t))), nil
}

func refineNotNull(b *cty.RefinementBuilder) *cty.RefinementBuilder { return b.NotNull() }

var numberParams = []function.Parameter{
	{Name: "a", Type: cty.Number, AllowDynamicType: true},
	{Name: "b", Type: cty.Number, AllowDynamicType: true},
}

// exactBinary is an arithmetic operator computed on exact decimals.
func exactBinary(desc string, op func(a, b *big.Rat) (*big.Rat, error)) function.Function {
	return function.New(&function.Spec{
		Description:  desc,
		Params:       numberParams,
		Type:         function.StaticReturnType(cty.Number),
		RefineResult: refineNotNull,
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			a, b, err := twoDecimals(args)
			if err != nil {
				return cty.NilVal, err
			}
			r, err := op(a, b)
			if err != nil {
				return cty.NilVal, err
			}
			return numberFromRat(r)
		},
	})
}

// exactCompare is an ordering operator on exact decimals.
func exactCompare(holds func(cmp int) bool) function.Function {
	return function.New(&function.Spec{
		Description:  "Compares two numbers exactly.",
		Params:       numberParams,
		Type:         function.StaticReturnType(cty.Bool),
		RefineResult: refineNotNull,
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			a, b, err := twoDecimals(args)
			if err != nil {
				return cty.NilVal, err
			}
			return cty.BoolVal(holds(a.Cmp(b))), nil
		},
	})
}

// exactEqual is == (or != when negate) with numbers compared by their exact
// decimals; any other values are compared by base, cty's own.
func exactEqual(base function.Function, negate bool) function.Function {
	params := base.Params()
	return function.New(&function.Spec{
		Description:  base.Description(),
		Params:       params,
		Type:         function.StaticReturnType(cty.Bool),
		RefineResult: refineNotNull,
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			a, b := args[0], args[1]
			if a.Type() == cty.Number && b.Type() == cty.Number && a.IsKnown() && b.IsKnown() && !a.IsNull() && !b.IsNull() {
				x, y, err := twoDecimals(args)
				if err != nil {
					return cty.NilVal, err
				}
				return cty.BoolVal((x.Cmp(y) == 0) != negate), nil
			}
			return base.Call(args)
		},
	})
}

func twoDecimals(args []cty.Value) (a, b *big.Rat, err error) {
	if a, err = numberDecimal(args[0]); err != nil {
		return nil, nil, err
	}
	if b, err = numberDecimal(args[1]); err != nil {
		return nil, nil, err
	}
	return a, b, nil
}
