package rules

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"

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
// exact. Every operation that computes a new number or compares two (the
// arithmetic operators, ==, <, ... in arith.go; max, min, pow, log, range
// and tonumber in functions.go; format's %f, %e and %g in format.go) reads
// its operands' decimals, computes with math/big exactly, and makes the
// result with numberFromRat, which again picks a precision that keeps every
// digit.
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
	// maxOperandDigits bounds the decimal exponent of a number a rule
	// computes with: operands may lie beyond numeric's range as long as the
	// result does not.
	maxOperandDigits = 1 << 19
	// basePrec is the least precision of a number's float: cty's own.
	basePrec = 512
)

// errRange is the error of a number beyond numeric's range.
var errRange = fmt.Errorf("the number has more than %d digits before or %d after the decimal point, more than Postgres's numeric holds", maxIntDigits, maxFracDigits)

// errOperandRange is the error of an operand too large or small to compute
// with.
var errOperandRange = fmt.Errorf("the number is beyond 1e±%d, too large or small to compute with", maxOperandDigits)

// decimalOf is the exact decimal value of f (see above).
func decimalOf(f *big.Float) (*big.Rat, error) {
	if f.IsInf() {
		return nil, errors.New("the number is infinite")
	}
	if f.Sign() == 0 {
		return new(big.Rat), nil
	}
	exp := f.MantExp(nil)
	// Bounds in bits, checked before any digit is made.
	if exp > maxOperandDigits*10/3 || exp < -maxOperandDigits*10/3 {
		return nil, errOperandRange
	}
	if f.IsInt() && exp <= int(f.Prec()) {
		// A float whose last bit weighs at most 1 is its integer exactly.
		i, _ := f.Int(nil)
		return new(big.Rat).SetInt(i), nil
	}
	if r := shortDecimal(f); r != nil {
		return r, nil
	}
	if exp > textExp || exp < -textExp {
		// big.Float's own conversion makes every digit of the binary value:
		// seconds for 1e-16000.
		return shortestDecimal(f), nil
	}
	r, ok := new(big.Rat).SetString(f.Text('e', -1))
	if !ok {
		return nil, fmt.Errorf("reading the number %s", f.Text('g', 10))
	}
	return r, nil
}

// shortDecimal is decimalOf for the common number of at most 15
// significant digits, read through float64: nil when f is not one. At 64
// bits or more, such a decimal that rounds to f is the only decimal of as
// few digits that does, so it is the shortest.
func shortDecimal(f *big.Float) *big.Rat {
	if f.Prec() < 64 {
		return nil
	}
	x, _ := f.Float64()
	if x == 0 || math.IsInf(x, 0) {
		return nil
	}
	text := strconv.FormatFloat(x, 'e', -1, 64)
	if len(text) > 22 { // more than 15 digits: "-d.dddddddddddddde-308"
		return nil
	}
	g, _, err := big.ParseFloat(text, 10, f.Prec(), big.ToNearestEven)
	if err != nil || g.Cmp(f) != 0 {
		return nil
	}
	r, ok := new(big.Rat).SetString(text)
	if !ok {
		return nil
	}
	return r
}

// textExp is the binary exponent beyond which decimalOf finds the shortest
// decimal itself rather than with big.Float.Text.
const textExp = 2048

// shortestDecimal is the decimal with the fewest significant digits that
// rounds to f (non-zero, finite) at f's precision, the closest one if two
// do: what f.Text('e', -1) gives, found by a binary search on the position
// of the last digit, in integers, instead of from every digit of f.
func shortestDecimal(f *big.Float) *big.Rat {
	// f = m * 2^e exactly, m an integer of f.Prec() bits.
	e := f.MantExp(nil) - int(f.Prec())
	m, _ := new(big.Float).SetMantExp(f, -e).Int(nil)
	neg := m.Sign() < 0
	m.Abs(m)
	// A decimal exactly half a unit from f still rounds to f when f's last
	// bit is 0 (to even).
	inclusive := m.Bit(0) == 0
	pow10 := func(n int) *big.Int { return new(big.Int).Exp(bigTen, big.NewInt(int64(n)), nil) }
	scale := func(x *big.Int, twos, tens int) *big.Int { // x * 2^twos * 10^tens, both >= 0
		out := new(big.Int).Lsh(x, uint(twos))
		if tens > 0 {
			out.Mul(out, pow10(tens))
		}
		return out
	}
	// fits returns n, the integer nearest f / 10^k, when n * 10^k rounds
	// to f.
	fits := func(k int) *big.Int {
		// f / 10^k = p / q
		p := scale(m, max(e, 0), max(-k, 0))
		q := scale(big.NewInt(1), max(-e, 0), max(k, 0))
		n, r := new(big.Int).QuoRem(p, q, new(big.Int))
		d := r
		twice := new(big.Int).Lsh(r, 1)
		if c := twice.Cmp(q); c > 0 || (c == 0 && n.Bit(0) == 1) {
			n.Add(n, big.NewInt(1))
			d = new(big.Int).Sub(q, r)
		}
		// |n*10^k - f| = d * 10^k / q <= 2^(e-1), in integers:
		// d * 10^k * 2^(1-e) against q, each side scaled to be whole.
		lhs := scale(d, max(1-e, 0), max(k, 0))
		rhs := scale(q, max(e-1, 0), max(-k, 0))
		if c := lhs.Cmp(rhs); c < 0 || (c == 0 && inclusive) {
			return n
		}
		return nil
	}
	// 10^lo is below half a unit of f, so the nearest multiple fits; 10^hi
	// is above |f|, so the nearest multiple is 0, which does not.
	lo := int(math.Floor(float64(e-1)*math.Log10(2))) - 1
	hi := int(math.Ceil(float64(f.MantExp(nil))*math.Log10(2))) + 1
	best := fits(lo)
	for lo+1 < hi {
		mid := lo + (hi-lo)/2
		if n := fits(mid); n != nil {
			lo, best = mid, n
		} else {
			hi = mid
		}
	}
	if neg {
		best.Neg(best)
	}
	r := new(big.Rat).SetInt(best)
	if lo >= 0 {
		return r.Mul(r, new(big.Rat).SetInt(pow10(lo)))
	}
	return r.SetFrac(best, pow10(-lo))
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
	if err := checkRange(r); err != nil {
		return nil, err
	}
	if r.IsInt() {
		i := r.Num()
		return new(big.Float).SetPrec(uint(max(basePrec, i.BitLen()))).SetInt(i), nil
	}
	mant, _, ok := decimalParts(r)
	if !ok {
		return nil, fmt.Errorf("internal error: %s has no finite decimal", r.String())
	}
	// A precision of log2(10) bits per digit and 16 more leaves the decimal
	// the only one of as few digits within half a unit of the last bit, so
	// the shortest decimal of the float is r.
	digits := float64(mant.BitLen()) * math.Log10(2)
	prec := uint(max(basePrec, int(math.Ceil((digits+1)*math.Log2(10)))+16))
	return new(big.Float).SetPrec(prec).SetRat(r), nil
}

// checkRange returns errRange unless r has a finite decimal of at most
// maxIntDigits digits before and maxFracDigits after the point.
func checkRange(r *big.Rat) error {
	intPart := new(big.Int).Quo(r.Num(), r.Denom())
	if atLeastPow10(intPart.Abs(intPart), maxIntDigits) {
		return errRange
	}
	if r.IsInt() {
		return nil
	}
	if _, scale, ok := decimalParts(r); !ok || scale > maxFracDigits {
		return errRange
	}
	return nil
}

// atLeastPow10 reports whether i >= 10^n (i >= 0), comparing bit lengths
// first so that no huge power is made unless i is near it.
func atLeastPow10(i *big.Int, n int) bool {
	bits := float64(n) * math.Log2(10)
	switch bl := i.BitLen(); {
	case float64(bl) <= math.Floor(bits): // i < 2^bl <= 10^n
		return false
	case float64(bl-1) >= math.Ceil(bits): // i >= 2^(bl-1) >= 10^n
		return true
	}
	return i.Cmp(new(big.Int).Exp(bigTen, big.NewInt(int64(n)), nil)) >= 0
}

var (
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
	fives, ok := powerOfFive(den)
	if !ok {
		return nil, 0, false
	}
	scale = max(twos, fives)
	// mant = num * 10^scale / denom = num * 2^(scale-twos) * 5^(scale-fives)
	mant = new(big.Int).Lsh(r.Num(), uint(scale-twos))
	if n := scale - fives; n > 0 {
		mant.Mul(mant, new(big.Int).Exp(bigFive, big.NewInt(int64(n)), nil))
	}
	return mant, scale, true
}

// powerOfFive returns n when x is 5^n; its bit length tells n within one.
func powerOfFive(x *big.Int) (n int, ok bool) {
	if x.Cmp(big.NewInt(1)) == 0 {
		return 0, true
	}
	guess := int(math.Round(float64(x.BitLen()-1) / math.Log2(5)))
	for _, n := range []int{guess, guess + 1, guess - 1} {
		if n > 0 && new(big.Int).Exp(bigFive, big.NewInt(int64(n)), nil).Cmp(x) == 0 {
			return n, true
		}
	}
	return 0, false
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
	if err := checkRange(r); err != nil {
		return nil, err
	}
	if r.IsInt() {
		return r.Num().Append(b, 10), nil
	}
	mant, scale, _ := decimalParts(r)
	if mant.Sign() < 0 {
		b = append(b, '-')
		mant = new(big.Int).Neg(mant)
	}
	digits := mant.Text(10)
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
