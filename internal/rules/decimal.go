package rules

import (
	"errors"
	"fmt"
	"math"
	"math/big"

	"github.com/zclconf/go-cty/cty"
)

// How rules hold exact decimals (the promise is in docs/config.md, "Exact
// numbers"; DESIGN.md invariant 9).
//
// cty numbers are binary *big.Float values, which cannot hold 0.07. The
// exact value of a number in a rule is therefore defined as the shortest
// decimal that rounds to its float at the float's precision (decimalOf).
// Every number that enters a rule is made so that this is the decimal it
// came from: HCL parses literals at 512 bits, numberVal parses column and
// JSON texts at 512 bits or more (enough for every digit), integers are
// exact. Every operation that computes a new number (the arithmetic
// operators, comparisons, max, min, pow, log, range: see arith.go) reads its
// operands' decimals, computes with math/big exactly, and makes the result
// with numberFromRat, which again picks a precision that keeps every digit.
// Functions that only pick, truncate or round to an integer (abs, ceil,
// floor, int, signum, parseint, coalesce, ...) keep the property on their
// own, and so do cty's own number-to-text conversions (tostring, templates,
// jsonencode), which write the same shortest decimal.
//
// A result that has no finite decimal (a quotient such as 1 / 3) is rounded
// half to even to quotientDigits significant digits; pow with an exponent
// that is not an integer and log are computed as 64-bit floats and rounded
// to floatDigits significant digits. Nothing is ever clamped: a result
// beyond what Postgres's numeric holds is an error.

const (
	// quotientDigits is the significant digits of a quotient that has no
	// finite decimal (those of IEEE 754 decimal128).
	quotientDigits = 34
	// floatDigits is the significant digits kept of a result computed as a
	// 64-bit float (pow with a fractional exponent, log).
	floatDigits = 15
	// maxIntDigits and maxFracDigits bound a computed number as Postgres
	// bounds numeric: digits before and after the decimal point.
	maxIntDigits  = 131072
	maxFracDigits = 16383
	// basePrec is the least precision of a number's float: cty's own.
	basePrec = 512
)

// errRange is the error of a number beyond numeric's range.
var errRange = fmt.Errorf("the number has more than %d digits before or %d after the decimal point, more than Postgres's numeric holds", maxIntDigits, maxFracDigits)

// decimalOf is the exact decimal value of f (see above).
func decimalOf(f *big.Float) (*big.Rat, error) {
	if f.IsInf() {
		return nil, errors.New("the number is infinite")
	}
	if f.Sign() == 0 {
		return new(big.Rat), nil
	}
	exp := f.MantExp(nil)
	// Bounds in bits of numeric's range, checked before any digit is made.
	if exp > maxIntDigits*10/3+8 || exp < -(maxFracDigits*10/3+int(f.Prec())+8) {
		return nil, errRange
	}
	if f.IsInt() && exp <= int(f.Prec()) {
		// A float whose last bit weighs at most 1 is its integer exactly.
		i, _ := f.Int(nil)
		return new(big.Rat).SetInt(i), nil
	}
	r, ok := new(big.Rat).SetString(f.Text('e', -1))
	if !ok {
		return nil, fmt.Errorf("reading the number %s", f.Text('g', 10))
	}
	return r, nil
}

// numberDecimal is the exact decimal of a known, non-null number value.
func numberDecimal(v cty.Value) (*big.Rat, error) {
	v, _ = v.Unmark()
	return decimalOf(v.AsBigFloat())
}

// numberFromRat makes a cty number whose decimal (decimalOf) is r, which
// must have a finite decimal.
func numberFromRat(r *big.Rat) (cty.Value, error) {
	f, err := floatFromRat(r)
	if err != nil {
		return cty.NilVal, err
	}
	return cty.NumberVal(f), nil
}

// floatFromRat is numberFromRat's float.
func floatFromRat(r *big.Rat) (*big.Float, error) {
	if r.IsInt() {
		i := r.Num()
		if i.BitLen() > maxIntDigits*10/3+8 {
			return nil, errRange
		}
		prec := uint(max(basePrec, i.BitLen()))
		return new(big.Float).SetPrec(prec).SetInt(i), nil
	}
	mant, scale, ok := decimalParts(r)
	if !ok {
		return nil, fmt.Errorf("internal error: %s has no finite decimal", r.String())
	}
	if scale > maxFracDigits {
		return nil, errRange
	}
	digits := len(new(big.Int).Abs(mant).Text(10))
	if digits-scale > maxIntDigits {
		return nil, errRange
	}
	// A precision of log2(10) bits per digit and 16 more leaves the decimal
	// the only one of as few digits within half a unit of the last bit, so
	// the shortest decimal of the float is r.
	prec := uint(max(basePrec, int(math.Ceil(float64(digits)*math.Log2(10)))+16))
	return new(big.Float).SetPrec(prec).SetRat(r), nil
}

var (
	bigTwo  = big.NewInt(2)
	bigFive = big.NewInt(5)
	bigTen  = big.NewInt(10)
)

// decimalParts writes r as mant / 10^scale with the least scale; ok is false
// when r has no finite decimal (its denominator has a prime factor other
// than 2 and 5).
func decimalParts(r *big.Rat) (mant *big.Int, scale int, ok bool) {
	den := new(big.Int).Set(r.Denom())
	twos := int(den.TrailingZeroBits())
	den.Rsh(den, uint(twos))
	fives := 0
	q, m := new(big.Int), new(big.Int)
	for den.Cmp(big.NewInt(1)) != 0 {
		q.QuoRem(den, bigFive, m)
		if m.Sign() != 0 {
			return nil, 0, false
		}
		den, q = q, den
		fives++
	}
	scale = max(twos, fives)
	// mant = num * 10^scale / denom = num * 2^(scale-twos) * 5^(scale-fives)
	mant = new(big.Int).Set(r.Num())
	if n := scale - twos; n > 0 {
		mant.Lsh(mant, uint(n))
	}
	if n := scale - fives; n > 0 {
		mant.Mul(mant, new(big.Int).Exp(bigFive, big.NewInt(int64(n)), nil))
	}
	return mant, scale, true
}

// roundSignificant rounds r half to even to digits significant digits.
func roundSignificant(r *big.Rat, digits int) *big.Rat {
	if r.Sign() == 0 {
		return new(big.Rat)
	}
	num := new(big.Int).Abs(r.Num())
	den := r.Denom()
	// e is the decimal exponent of r's leading digit: 10^e <= |r| < 10^(e+1).
	e := len(num.Text(10)) - len(den.Text(10))
	if new(big.Rat).SetFrac(num, den).Cmp(pow10Rat(e)) < 0 {
		e--
	}
	// Scale so that the digits to keep are the integer part.
	shift := digits - 1 - e
	scaled := new(big.Rat).Mul(new(big.Rat).SetFrac(num, den), pow10Rat(shift))
	q, rem := new(big.Int).QuoRem(scaled.Num(), scaled.Denom(), new(big.Int))
	// Compare the remainder with half the denominator.
	switch new(big.Int).Lsh(rem, 1).Cmp(scaled.Denom()) {
	case 1:
		q.Add(q, big.NewInt(1))
	case 0:
		if q.Bit(0) == 1 {
			q.Add(q, big.NewInt(1))
		}
	}
	out := new(big.Rat).Mul(new(big.Rat).SetInt(q), pow10Rat(-shift))
	if r.Sign() < 0 {
		out.Neg(out)
	}
	return out
}

// pow10Rat is 10^n for any integer n.
func pow10Rat(n int) *big.Rat {
	p := new(big.Int).Exp(bigTen, big.NewInt(int64(abs(n))), nil)
	if n < 0 {
		return new(big.Rat).SetFrac(big.NewInt(1), p)
	}
	return new(big.Rat).SetInt(p)
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// appendDecimal writes r, which has a finite decimal, in plain notation as
// Postgres writes numeric: all the digits of an integer, a fraction with the
// digits it needs (0.014, 0.00000000000000000001), never an exponent.
func appendDecimal(b []byte, r *big.Rat) ([]byte, error) {
	if r.IsInt() {
		if len(r.Num().Text(10)) > maxIntDigits+1 {
			return nil, errRange
		}
		return r.Num().Append(b, 10), nil
	}
	mant, scale, ok := decimalParts(r)
	if !ok {
		return nil, fmt.Errorf("internal error: %s has no finite decimal", r.String())
	}
	if scale > maxFracDigits {
		return nil, errRange
	}
	if mant.Sign() < 0 {
		b = append(b, '-')
		mant = new(big.Int).Neg(mant)
	}
	digits := mant.Text(10)
	if len(digits)-scale > maxIntDigits {
		return nil, errRange
	}
	if len(digits) <= scale {
		b = append(b, '0', '.')
		for range scale - len(digits) {
			b = append(b, '0')
		}
		return append(b, digits...), nil
	}
	point := len(digits) - scale
	b = append(b, digits[:point]...)
	b = append(b, '.')
	return append(b, digits[point:]...), nil
}

// appendNumber writes f's exact decimal (decimalOf) as JSON (appendDecimal).
func appendNumber(b []byte, f *big.Float) ([]byte, error) {
	r, err := decimalOf(f)
	if err != nil {
		return nil, err
	}
	return appendDecimal(b, r)
}
