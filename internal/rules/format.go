package rules

import (
	"math/big"
	"strconv"
	"strings"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// formatFunc is cty's format with %f, %e and %g rounding the exact decimal
// half to even. cty hands the number's binary float to Go's formatter,
// which rounds the binary value: 0.135 to two places is 0.14 or 0.13
// depending on the binary error. Here each such verb gets its own argument,
// already rounded to the digits the verb shows, so Go's formatter has
// nothing left to round; everything else is cty's format as is.
var formatFunc = function.New(&function.Spec{
	Description:  stdlib.FormatFunc.Description(),
	Params:       stdlib.FormatFunc.Params(),
	VarParam:     stdlib.FormatFunc.VarParam(),
	Type:         function.StaticReturnType(cty.String),
	RefineResult: refineNotNull,
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		if rewritten, ok := roundFormatArgs(args[0].AsString(), args[1:]); ok {
			return stdlib.FormatFunc.Call(rewritten)
		}
		return stdlib.FormatFunc.Call(args)
	},
})

// formatVerb is one verb of a format string: raw up to its argument index
// (flags, width, precision) and its mode.
type formatVerb struct {
	start, end int // byte range in the format
	head       string
	prec       int // -1: none
	arg        int // 1-based
	mode       byte
}

// roundFormatArgs rewrites format and args so that every verb has its own
// argument, with numbers of float verbs rounded exactly. ok is false when
// there is nothing to round or the format is one cty should judge itself
// (bad syntax, missing or unused arguments): the caller then calls format
// unchanged.
func roundFormatArgs(format string, args []cty.Value) ([]cty.Value, bool) {
	for _, a := range args {
		if !a.IsWhollyKnown() {
			return nil, false
		}
	}
	verbs, ok := scanFormat(format)
	if !ok {
		return nil, false
	}
	used := make([]bool, len(args))
	rounding := false
	for _, v := range verbs {
		if v.arg < 1 || v.arg > len(args) {
			return nil, false
		}
		used[v.arg-1] = true
		if isFloatVerb(v.mode) && args[v.arg-1].Type() == cty.Number && !args[v.arg-1].IsNull() {
			rounding = true
		}
	}
	for _, u := range used {
		if !u {
			return nil, false
		}
	}
	if !rounding {
		return nil, false
	}
	var b strings.Builder
	out := []cty.Value{cty.NilVal}
	last := 0
	for _, v := range verbs {
		arg := args[v.arg-1]
		if isFloatVerb(v.mode) && arg.Type() == cty.Number && !arg.IsNull() {
			rounded, err := roundForVerb(arg, v)
			if err != nil {
				return nil, false
			}
			arg = rounded
		}
		out = append(out, arg)
		b.WriteString(format[last:v.start])
		b.WriteString(v.head)
		b.WriteString("[" + strconv.Itoa(len(out)-1) + "]")
		b.WriteByte(v.mode)
		last = v.end
	}
	b.WriteString(format[last:])
	out[0] = cty.StringVal(b.String())
	return out, true
}

func isFloatVerb(mode byte) bool {
	switch mode {
	case 'e', 'E', 'f', 'g', 'G':
		return true
	}
	return false
}

// roundForVerb rounds a number to the digits verb shows, half to even.
func roundForVerb(v cty.Value, verb formatVerb) (cty.Value, error) {
	d, err := numberDecimal(v)
	if err != nil {
		return cty.NilVal, err
	}
	prec := verb.prec
	switch verb.mode {
	case 'f':
		if prec < 0 {
			prec = 6
		}
		return numberFromRat(roundPlaces(d, prec))
	case 'e', 'E':
		if prec < 0 {
			prec = 6
		}
		return numberFromRat(roundSignificant(d, prec+1))
	}
	// g, G: shortest without a precision, which the exact value already is.
	if prec < 0 {
		return v, nil
	}
	return numberFromRat(roundSignificant(d, max(prec, 1)))
}

// roundPlaces rounds r half to even to places digits after the point.
func roundPlaces(r *big.Rat, places int) *big.Rat {
	scaled := new(big.Rat).Mul(r, pow10Rat(places))
	q, rem := new(big.Int).QuoRem(scaled.Num(), scaled.Denom(), new(big.Int))
	switch new(big.Int).Lsh(new(big.Int).Abs(rem), 1).Cmp(scaled.Denom()) {
	case 1:
		q.Add(q, big.NewInt(int64(r.Sign())))
	case 0:
		if q.Bit(0) == 1 {
			q.Add(q, big.NewInt(int64(r.Sign())))
		}
	}
	return new(big.Rat).Mul(new(big.Rat).SetInt(q), pow10Rat(-places))
}

// scanFormat lists the verbs of a cty format string: '%' flags width
// precision [argidx] mode, arguments numbered as cty numbers them.
func scanFormat(format string) ([]formatVerb, bool) {
	var verbs []formatVerb
	next := 1
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		if i+1 < len(format) && format[i+1] == '%' {
			i++
			continue
		}
		v := formatVerb{start: i, prec: -1, arg: next}
		j := i + 1
		for j < len(format) && strings.IndexByte("0#-+ ", format[j]) >= 0 {
			j++
		}
		for j < len(format) && format[j] >= '0' && format[j] <= '9' {
			j++
		}
		if j < len(format) && format[j] == '.' {
			j++
			p := j
			for j < len(format) && format[j] >= '0' && format[j] <= '9' {
				j++
			}
			v.prec = 0
			if j > p {
				n, err := strconv.Atoi(format[p:j])
				if err != nil {
					return nil, false
				}
				v.prec = n
			}
		}
		v.head = format[i:j]
		if j < len(format) && format[j] == '[' {
			k := strings.IndexByte(format[j:], ']')
			if k < 0 {
				return nil, false
			}
			n, err := strconv.Atoi(format[j+1 : j+k])
			if err != nil || n < 1 {
				return nil, false
			}
			v.arg = n
			j += k + 1
		}
		if j >= len(format) || !isLetter(format[j]) {
			return nil, false
		}
		v.mode = format[j]
		v.end = j + 1
		verbs = append(verbs, v)
		next = v.arg + 1
		i = j
	}
	return verbs, true
}

func isLetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }
