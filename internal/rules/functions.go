package rules

import (
	"errors"
	"fmt"
	"math"
	"math/big"

	"github.com/walhook/walhook/internal/config"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// functions are config.Functions with those that compute numbers replaced
// by exact ones (see decimal.go); rules and bodies evaluate with them.
var functions = func() map[string]function.Function {
	out := make(map[string]function.Function, len(config.Functions()))
	for name, f := range config.Functions() {
		out[name] = f
	}
	out["max"] = pickFunc("max", 1)
	out["min"] = pickFunc("min", -1)
	out["pow"] = powFunc
	out["log"] = logFunc
	out["range"] = rangeFunc
	out["format"] = formatFunc
	out["tonumber"] = toNumberFunc(out["tonumber"])
	return out
}()

// pickFunc is max (want 1) or min (want -1) by exact comparison; the result
// is the chosen argument itself.
func pickFunc(name string, want int) function.Function {
	return function.New(&function.Spec{
		Description:  "Returns the " + name + "imum of the given numbers, compared exactly.",
		VarParam:     &function.Parameter{Name: "numbers", Type: cty.Number, AllowDynamicType: true},
		Type:         function.StaticReturnType(cty.Number),
		RefineResult: refineNotNull,
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			if len(args) == 0 {
				return cty.NilVal, errors.New("must pass at least one number")
			}
			best := args[0]
			bestDec, err := numberDecimal(best)
			if err != nil {
				return cty.NilVal, err
			}
			for _, v := range args[1:] {
				d, err := numberDecimal(v)
				if err != nil {
					return cty.NilVal, err
				}
				if d.Cmp(bestDec) == want {
					best, bestDec = v, d
				}
			}
			return best, nil
		},
	})
}

// maxExponent bounds an integer power computed exactly.
const maxExponent = 1 << 16

// powFunc is pow(num, power): exact for an integer power (a negative one
// divides as / does), else a 64-bit float rounded to floatDigits.
var powFunc = function.New(&function.Spec{
	Description: "Returns the given number raised to the given power: exact for an integer power.",
	Params: []function.Parameter{
		{Name: "num", Type: cty.Number},
		{Name: "power", Type: cty.Number},
	},
	Type:         function.StaticReturnType(cty.Number),
	RefineResult: refineNotNull,
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		num, power, err := twoDecimals(args)
		if err != nil {
			return cty.NilVal, err
		}
		if !power.IsInt() {
			x, _ := num.Float64()
			y, _ := power.Float64()
			return floatResult(math.Pow(x, y), "pow")
		}
		n := power.Num()
		if !n.IsInt64() || n.Int64() > maxExponent || n.Int64() < -maxExponent {
			return cty.NilVal, fmt.Errorf("the power %s is beyond ±%d", n, maxExponent)
		}
		e := n.Int64()
		if num.Sign() == 0 && e < 0 {
			return cty.NilVal, errDivideByZero
		}
		if bits := int64(max(num.Num().BitLen(), num.Denom().BitLen())) * abs64(e); bits > maxIntDigits*10/3+maxFracDigits*10/3 {
			return cty.NilVal, errRange
		}
		exp := big.NewInt(abs64(e))
		r := new(big.Rat).SetFrac(new(big.Int).Exp(num.Num(), exp, nil), new(big.Int).Exp(num.Denom(), exp, nil))
		if e < 0 {
			if r, err = quotient(big.NewRat(1, 1), r); err != nil {
				return cty.NilVal, err
			}
		}
		return numberFromRat(r)
	},
})

func abs64(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// logFunc is log(num, base), a 64-bit float rounded to floatDigits.
var logFunc = function.New(&function.Spec{
	Description: "Returns the logarithm of the given number in the given base, to 15 significant digits.",
	Params: []function.Parameter{
		{Name: "num", Type: cty.Number},
		{Name: "base", Type: cty.Number},
	},
	Type:         function.StaticReturnType(cty.Number),
	RefineResult: refineNotNull,
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		num, base, err := twoDecimals(args)
		if err != nil {
			return cty.NilVal, err
		}
		if num.Sign() <= 0 || base.Sign() <= 0 || base.Cmp(big.NewRat(1, 1)) == 0 {
			return cty.NilVal, errors.New("log needs a positive number and a positive base other than 1")
		}
		x, _ := num.Float64()
		b, _ := base.Float64()
		return floatResult(math.Log(x)/math.Log(b), "log")
	},
})

// floatResult is a 64-bit float result rounded to floatDigits significant
// digits.
func floatResult(f float64, what string) (cty.Value, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return cty.NilVal, fmt.Errorf("%s has no finite result for these arguments", what)
	}
	r, _ := new(big.Rat).SetString(big.NewFloat(f).Text('e', floatDigits-1))
	return numberFromRat(r)
}

// maxRange is cty's bound on the values range generates.
const maxRange = 1024

// rangeFunc is range([start,] end [, step]) as cty's, stepping exactly.
var rangeFunc = function.New(&function.Spec{
	Description:  "Returns a list of numbers from start up to (not including) end, by step, computed exactly.",
	VarParam:     &function.Parameter{Name: "params", Type: cty.Number},
	Type:         function.StaticReturnType(cty.List(cty.Number)),
	RefineResult: refineNotNull,
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		decs := make([]*big.Rat, len(args))
		for i, a := range args {
			d, err := numberDecimal(a)
			if err != nil {
				return cty.NilVal, err
			}
			decs[i] = d
		}
		one := big.NewRat(1, 1)
		var start, end, step *big.Rat
		switch len(decs) {
		case 1:
			start, end, step = new(big.Rat), decs[0], one
			if end.Sign() < 0 {
				step = big.NewRat(-1, 1)
			}
		case 2:
			start, end, step = decs[0], decs[1], one
			if end.Cmp(start) < 0 {
				step = big.NewRat(-1, 1)
			}
		case 3:
			start, end, step = decs[0], decs[1], decs[2]
		default:
			return cty.NilVal, errors.New("must have one, two, or three arguments")
		}
		if step.Sign() == 0 {
			return cty.NilVal, function.NewArgErrorf(2, "step must not be zero")
		}
		down := step.Sign() < 0
		if down && end.Cmp(start) > 0 {
			return cty.NilVal, function.NewArgErrorf(1, "end must be less than start when step is negative")
		}
		if !down && end.Cmp(start) < 0 {
			return cty.NilVal, function.NewArgErrorf(1, "end must be greater than start when step is positive")
		}
		var vals []cty.Value
		for num := new(big.Rat).Set(start); ; num = new(big.Rat).Add(num, step) {
			if (down && num.Cmp(end) <= 0) || (!down && num.Cmp(end) >= 0) {
				break
			}
			if len(vals) >= maxRange {
				return cty.NilVal, fmt.Errorf("more than %d values were generated; either decrease the difference between start and end or use a smaller step", maxRange)
			}
			v, err := numberFromRat(num)
			if err != nil {
				return cty.NilVal, err
			}
			vals = append(vals, v)
		}
		if len(vals) == 0 {
			return cty.ListValEmpty(cty.Number), nil
		}
		return cty.ListVal(vals), nil
	},
})

// toNumberFunc is tonumber with a string read at the precision its digits
// need (cty reads it at 512 bits, about 150 digits); anything else is left
// to base.
func toNumberFunc(base function.Function) function.Function {
	return function.New(&function.Spec{
		Description: base.Description(),
		Params:      base.Params(),
		Type:        func(args []cty.Value) (cty.Type, error) { return base.ReturnType(typesOf(args)) },
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			v, marks := args[0].Unmark()
			if v.Type() == cty.String && v.IsKnown() && !v.IsNull() {
				if n := numberVal(v.AsString()); n.Type() == cty.Number {
					return n.WithMarks(marks), nil
				}
			}
			return base.Call(args)
		},
	})
}

func typesOf(args []cty.Value) []cty.Type {
	out := make([]cty.Type, len(args))
	for i, a := range args {
		out[i] = a.Type()
	}
	return out
}
