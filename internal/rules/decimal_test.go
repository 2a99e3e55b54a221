package rules

import (
	"math/big"
	"math/rand/v2"
	"testing"
)

// TestShortestDecimalAgreesWithText checks decimalOf's own search for the
// shortest decimal gives what big.Float.Text('e', -1) gives, on floats of
// many precisions and exponents (texts of up to 60 digits parsed at each
// precision, and values computed at it).
func TestShortestDecimalAgreesWithText(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	digits := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('0' + rng.IntN(10))
		}
		b[0] = byte('1' + rng.IntN(9))
		return string(b)
	}
	for i := range 3000 {
		prec := []uint{24, 53, 64, 100, 512, 700}[i%6]
		text := digits(1+rng.IntN(60)) + "e" + big.NewInt(int64(rng.IntN(1200)-600)).String()
		if i%2 == 0 {
			text = "-" + text
		}
		f, _, err := big.ParseFloat(text, 10, prec, big.ToNearestEven)
		if err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 { // a value computed at the precision, not parsed
			f.Quo(f, big.NewFloat(3))
		}
		want, ok := new(big.Rat).SetString(f.Text('e', -1))
		if !ok {
			t.Fatal(f.Text('e', -1))
		}
		if got := shortestDecimal(f); got.Cmp(want) != 0 {
			t.Fatalf("%s at %d bits: got %s, want %s", text, prec, got.FloatString(40), f.Text('e', -1))
		}
	}
}

// TestExtremeExponentsAreQuick checks a literal at numeric's smallest scale
// is read without making every digit of its binary value.
func TestExtremeExponentsAreQuick(t *testing.T) {
	t.Parallel()
	for _, text := range []string{"1e-16383", "-4.5e-20000", "1e131072", "1.234567890123456789e300000"} {
		f, _, err := big.ParseFloat(text, 10, basePrec, big.ToNearestEven)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decimalOf(f)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := new(big.Rat).SetString(text)
		if got.Cmp(want) != 0 {
			t.Errorf("%s: got a different value", text)
		}
	}
}
