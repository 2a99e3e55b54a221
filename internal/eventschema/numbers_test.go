package eventschema

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/rules"
)

// The expected values below are computed here with math/big alone (big.Rat
// arithmetic, and this file's own rendering and rounding), never with the
// code under test; each expression goes through the real path: a config
// with an event rule whose data is { v = <expression> }, rules.Compile,
// Evaluate on a change whose row holds the values the Reader decodes, and
// the JSON Schema derived for that rule.

// numCase is one expression and what data.v must be: want is its JSON
// text; wantErr, when set, is part of the error the rule must fail with.
type numCase struct {
	expr    string
	want    string
	wantErr string
}

// numRow is the row the expressions read: numerics (json.Number, as the
// Reader decodes numeric), a bigint, a float8 and a jsonb column.
var numRow = map[string]any{
	"a":    json.Number("12345678901234567890.12345678901234567890"),
	"b":    json.Number("-0.000000000000000000000000000001234"),
	"c":    json.Number("99999999999999999999999999999999999999.99"),
	"d":    json.Number("0.07"),
	"e":    json.Number("100000000000000000000"),
	"z":    json.Number("-0.000"),
	"i":    int64(9223372036854775807),
	"f":    float64(0.1),
	"g":    float64(1e20),
	"meta": json.RawMessage(`{"price": 1234567890123456789012345.678, "tiny": 1e-40, "big": 12345678901234567890}`),
}

var numColumns = []string{"a", "b", "c", "d", "e", "z", "i", "f", "g", "meta"}

// rowTexts are the texts the row's numbers arrive with where they are not
// their plain form.
var rowTexts = map[string]string{
	"new.a": "12345678901234567890.12345678901234567890", "new.g": "1e+20", "new.meta.tiny": "1e-40",
}

// sourceText is the JSON of a computed value r: text, a value's source text,
// when r is that value, else r's plain form.
func sourceText(r *big.Rat, text string) string {
	if text != "" && rat(text).Cmp(r) == 0 {
		return text
	}
	return plain(r)
}

// numTable is the catalog's view of numRow's table.
func numTable() *cdc.Table {
	col := func(name string, oid uint32) cdc.Column {
		return cdc.Column{Name: name, Type: cdc.ColumnValueType(oid, ""), NotNull: true}
	}
	return &cdc.Table{
		Schema: "public", Name: "nums", Identity: 'd', Key: []string{"i"},
		Columns: []cdc.Column{
			col("a", pgtype.NumericOID), col("b", pgtype.NumericOID), col("c", pgtype.NumericOID),
			col("d", pgtype.NumericOID), col("e", pgtype.NumericOID), col("z", pgtype.NumericOID),
			col("i", pgtype.Int8OID), col("f", pgtype.Float8OID), col("g", pgtype.Float8OID),
			col("meta", pgtype.JSONBOID),
		},
	}
}

// rat is the exact value of a decimal text.
func rat(s string) *big.Rat {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		panic("bad decimal " + s)
	}
	return r
}

// plain writes r, which has a finite decimal, as the digits it needs, with
// no exponent: r.FloatString at the least scale that holds it.
func plain(r *big.Rat) string {
	if r.IsInt() {
		return r.Num().String()
	}
	scaled := new(big.Rat).Set(r)
	ten := big.NewRat(10, 1)
	for scale := 1; scale <= 20000; scale++ {
		scaled.Mul(scaled, ten)
		if scaled.IsInt() {
			return r.FloatString(scale)
		}
	}
	panic("no finite decimal: " + r.String())
}

// terminates reports whether r has a finite decimal: some r * 10^k is an
// integer, which holds when it does for k = the denominator's bit length.
func terminates(r *big.Rat) bool {
	k := r.Denom().BitLen()
	p := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(k)), nil)
	return new(big.Int).Mod(new(big.Int).Mul(r.Num(), p), r.Denom()).Sign() == 0
}

// round34 rounds r half to even to 34 significant digits, working on its
// digits as text.
func round34(r *big.Rat) *big.Rat {
	neg := r.Sign() < 0
	a := new(big.Rat).Abs(r)
	// 60 digits after the point past the leading digit are plenty to find
	// the 34th digit and the first dropped one; sticky is set when anything
	// is left beyond them.
	intDigits := len(new(big.Int).Quo(a.Num(), a.Denom()).String())
	frac := 34 + 30
	if intDigits == 1 && a.Cmp(big.NewRat(1, 1)) < 0 {
		frac = 34 + 30 + leadingZeros(a)
	}
	scaled := new(big.Int).Mul(a.Num(), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(frac)), nil))
	q, m := new(big.Int).QuoRem(scaled, a.Denom(), new(big.Int))
	digits := q.String()
	sticky := m.Sign() != 0
	first := 0
	for first < len(digits) && digits[first] == '0' {
		first++
	}
	keep := digits[:first+34]
	rest := digits[first+34:]
	up := false
	switch {
	case rest[0] > '5':
		up = true
	case rest[0] == '5':
		up = sticky || strings.Trim(rest[1:], "0") != "" || (keep[len(keep)-1]-'0')%2 == 1
	}
	kept, _ := new(big.Int).SetString(keep, 10)
	if up {
		kept.Add(kept, big.NewInt(1))
	}
	out := new(big.Rat).SetInt(kept)
	if e := frac - len(rest); e >= 0 {
		out.Quo(out, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(e)), nil)))
	} else {
		out.Mul(out, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(-e)), nil)))
	}
	if neg {
		out.Neg(out)
	}
	return out
}

// leadingZeros counts the zeros after the point of 0 < a < 1.
func leadingZeros(a *big.Rat) int {
	n := 0
	x := new(big.Rat).Set(a)
	for x.Cmp(big.NewRat(1, 10)) < 0 {
		x.Mul(x, big.NewRat(10, 1))
		n++
	}
	return n
}

// The operations as the docs define them, on exact values.
var ops = map[string]func(a, b *big.Rat) *big.Rat{
	"+": func(a, b *big.Rat) *big.Rat { return new(big.Rat).Add(a, b) },
	"-": func(a, b *big.Rat) *big.Rat { return new(big.Rat).Sub(a, b) },
	"*": func(a, b *big.Rat) *big.Rat { return new(big.Rat).Mul(a, b) },
	"/": func(a, b *big.Rat) *big.Rat {
		q := new(big.Rat).Quo(a, b)
		if !terminates(q) {
			return round34(q)
		}
		return q
	},
}

// literals are operands written in the rule.
var literals = []string{
	"0.07", "0.2", "1.0001", "-0.0000000001", "0.1000000000", "1e-20",
	"1e20", "-1e20", "1e19", "9223372036854775808", "12345678901234567890", "3",
	"-7.25", "1e-300", "4.5e300",
}

// numCases builds the table.
func numCases() []numCase {
	var cases []numCase
	add := func(expr, want string) { cases = append(cases, numCase{expr: expr, want: want}) }
	fail := func(expr, wantErr string) { cases = append(cases, numCase{expr: expr, wantErr: wantErr}) }

	// Literals on their own: written in plain form, whatever their notation.
	for _, l := range literals {
		add(l, plain(rat(l)))
	}
	// Every operator on pairs of literals.
	pairs := [][2]int{}
	for i := range literals {
		for j := range literals {
			if (i+2*j)%3 == 0 || i == j {
				pairs = append(pairs, [2]int{i, j})
			}
		}
	}
	for _, p := range pairs {
		x, y := literals[p[0]], literals[p[1]]
		for _, op := range []string{"+", "-", "*", "/"} {
			add(fmt.Sprintf("(%s) %s (%s)", x, op, y), plain(ops[op](rat(x), rat(y))))
		}
	}
	// Row values: numerics with many digits, a bigint, floats (as the
	// decimal Postgres writes for them), jsonb members.
	rowNums := map[string]string{
		"new.a": "12345678901234567890.12345678901234567890", "new.b": "-0.000000000000000000000000000001234",
		"new.c": "99999999999999999999999999999999999999.99", "new.d": "0.07", "new.e": "100000000000000000000",
		"new.i": "9223372036854775807", "new.f": "0.1", "new.g": "100000000000000000000",
		"new.meta.price": "1234567890123456789012345.678", "new.meta.tiny": "1e-40", "new.meta.big": "12345678901234567890",
	}
	names := []string{"new.a", "new.b", "new.c", "new.d", "new.e", "new.i", "new.f", "new.g", "new.meta.price", "new.meta.tiny", "new.meta.big"}
	for i, x := range names {
		for _, op := range []string{"+", "-", "*", "/"} {
			y := names[(i+3)%len(names)]
			add(fmt.Sprintf("%s %s %s", x, op, y), plain(ops[op](rat(rowNums[x]), rat(rowNums[y]))))
			add(fmt.Sprintf("%s %s 0.2", x, op), plain(ops[op](rat(rowNums[x]), rat("0.2"))))
		}
		add(fmt.Sprintf("-%s", x), plain(new(big.Rat).Neg(rat(rowNums[x]))))
		// abs of a positive value is the value: it keeps the text Postgres gave.
		add(fmt.Sprintf("abs(%s)", x), sourceText(new(big.Rat).Abs(rat(rowNums[x])), rowTexts[x]))
		add(fmt.Sprintf("%s * 3 - %s * 2 + 1", x, x), plain(new(big.Rat).Add(rat(rowNums[x]), big.NewRat(1, 1))))
	}
	// Values passed through: the text Postgres gave, also beyond int64.
	add("new.a", "12345678901234567890.12345678901234567890")
	add("new.e", "100000000000000000000")
	add("coalesce(new.e, 0)", "100000000000000000000")
	add("merge({ x = new.e }).x", "100000000000000000000")
	add("new.z", "-0.000")
	add("new.meta.big", "12345678901234567890")
	add("new.meta.tiny", "1e-40")
	add("new.g", "1e+20")
	add("true ? new.e : 0", "100000000000000000000")
	add("[new.e, new.a][0]", "100000000000000000000")

	// Values beyond int64, written and computed.
	for _, s := range []string{"9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
		"18446744073709551616", "12345678901234567890", "-12345678901234567890", "1e19", "1e20", "-1e20", "1e40"} {
		add(s, plain(rat(s)))
		add(s+" + 1", plain(new(big.Rat).Add(rat(s), big.NewRat(1, 1))))
		add(s+" * 1000", plain(new(big.Rat).Mul(rat(s), big.NewRat(1000, 1))))
		add(fmt.Sprintf("max(%s, 0)", s), plain(maxRat(rat(s), new(big.Rat))))
		add(fmt.Sprintf("min(%s, 0)", s), plain(minRat(rat(s), new(big.Rat))))
	}
	add("9223372036854775807 + 9223372036854775807", "18446744073709551614")
	add("-9223372036854775808 - 1", "-9223372036854775809")
	add("new.i + 1", "9223372036854775808")
	add("new.i * new.i", plain(new(big.Rat).Mul(rat("9223372036854775807"), rat("9223372036854775807"))))
	add(`parseint("123456789012345678901234567890", 10)`, "123456789012345678901234567890")
	add(`parseint("-ffffffffffffffffffff", 16)`, "-1208925819614629174706175")
	add(`tonumber("12345678901234567890.5")`, "12345678901234567890.5")
	long := strings.Repeat("1234567890", 20) + ".5"
	add(`tonumber("`+long+`") * 2`, plain(new(big.Rat).Mul(rat(long), big.NewRat(2, 1))))
	add(`tonumber(null)`, "null")

	// Tiny and huge exponents.
	add("1e-300 * 1e-5", plain(new(big.Rat).Mul(rat("1e-300"), rat("1e-5"))))
	add("1e300 * 1e300", plain(new(big.Rat).Mul(rat("1e300"), rat("1e300"))))
	add("1e-16383", plain(rat("1e-16383")))
	add("1e-16000 * 1e-383", plain(rat("1e-16383")))
	add("1e-20000 * 1e20000", "1")
	add("1.5e-30 + 1", "1.0000000000000000000000000000015")
	add("new.meta.tiny * new.meta.tiny", plain(new(big.Rat).Mul(rat("1e-40"), rat("1e-40"))))
	fail("1e-16384", "numeric holds")
	fail("new.meta.tiny * 1e-16350", "numeric holds")
	fail("new.e * 1e131060", "numeric holds")

	// Negative zero: computed zeros are 0.
	add("-0", "0")
	add("-0.0", "0")
	add("0 * -1", "0")
	add("-0.07 * 0", "0")
	add("new.z * 3", sourceText(new(big.Rat), "-0.000")) // equal to its source: keeps its text
	add("-(0.5 - 0.5)", "0")

	// Division: exact when the quotient ends, else 34 significant digits.
	for _, q := range [][2]string{{"1", "3"}, {"2", "3"}, {"10", "3"}, {"-1", "7"}, {"1", "8"}, {"1", "1024"},
		{"0.07", "0.2"}, {"1e20", "3"}, {"1", "3e-20"}, {"22", "7"}, {"1e-30", "3"}, {"100", "0.0016"}} {
		add(fmt.Sprintf("%s / %s", q[0], q[1]), plain(ops["/"](rat(q[0]), rat(q[1]))))
	}
	add("2 / 3 * 3", plain(new(big.Rat).Mul(ops["/"](big.NewRat(2, 1), big.NewRat(3, 1)), big.NewRat(3, 1))))
	fail("new.d / 0", "dividing by zero")
	fail("new.d / (new.d - new.d)", "dividing by zero")
	fail("new.i % 0", "dividing by zero")

	// Modulo: the sign of the dividend.
	for _, m := range [][2]string{{"10", "3"}, {"-10", "3"}, {"7.5", "2"}, {"-7.5", "2"}, {"1e20", "7"}, {"0.07", "0.02"}, {"12345678901234567890.5", "1e10"}} {
		a, b := rat(m[0]), rat(m[1])
		q := new(big.Rat).Quo(a, b)
		t := new(big.Int).Quo(q.Num(), q.Denom())
		add(fmt.Sprintf("%s %% %s", m[0], m[1]), plain(new(big.Rat).Sub(a, new(big.Rat).Mul(b, new(big.Rat).SetInt(t)))))
	}

	// Functions that keep exactness.
	for _, x := range []string{"0.07", "-0.07", "1e20 + 0.5", "-1e20 - 0.5", "12345678901234567890.99", "-2.5", "7"} {
		v := evalLit(x)
		add(fmt.Sprintf("ceil(%s)", x), ceilRat(v).String())
		add(fmt.Sprintf("floor(%s)", x), floorRat(v).String())
		add(fmt.Sprintf("int(%s)", x), new(big.Int).Quo(v.Num(), v.Denom()).String())
		add(fmt.Sprintf("abs(%s)", x), plain(new(big.Rat).Abs(v)))
		add(fmt.Sprintf("signum(%s)", x), fmt.Sprint(v.Sign()))
	}
	add("max(0.1, 0.10000000000000000000001, 0.099999999999999999999999)", "0.10000000000000000000001")
	add("min(new.b, new.meta.tiny, 0)", "-0.000000000000000000000000000001234")
	// e and g are both 1e20; g arrived as 1e+20 and the result keeps that text.
	add("max(new.e, new.g, new.i)", sourceText(rat("1e20"), "1e+20"))
	add("pow(2, 100)", plain(new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(2), big.NewInt(100), nil))))
	add("pow(0.1, 30)", plain(rat("1e-30")))
	add("pow(1.0001, 3)", plain(new(big.Rat).Mul(rat("1.0001"), new(big.Rat).Mul(rat("1.0001"), rat("1.0001")))))
	add("pow(2, -3)", "0.125")
	add("pow(3, -1)", plain(round34(big.NewRat(1, 3))))
	add("pow(-1e20, 2)", plain(rat("1e40")))
	add("pow(7, 0)", "1")
	add("pow(2, 0.5)", plain(round15(sqrt2())))
	add("log(1000, 10)", "3")
	add("log(8, 2)", "3")
	fail("log(0, 10)", "positive")
	add("range(0, 0.5, 0.1)", "[0,0.1,0.2,0.3,0.4]")
	add("range(1e20, 1e20 + 3)", "[100000000000000000000,100000000000000000001,100000000000000000002]")

	// Comparisons are exact.
	add("0.1 + 0.2 == 0.3", "true")
	add("0.1 + 0.2 != 0.3", "false")
	add("0.07 * 0.2 == 0.014", "true")
	add("1e20 + 1 > 1e20", "true")
	add("9223372036854775808 > 9223372036854775807", "true")
	add("new.e == 1e20", "true")
	add("new.e == new.g", "true")
	add("new.f == 0.1", "true")
	add("new.z == 0", "true")
	add("new.d * 3 == 0.21", "true")
	add("0.10000000000000000000000000000000000000001 > 0.1", "true")
	add("new.b < 0", "true")
	add("new.b <= -0.000000000000000000000000000001234", "true")
	add("new.b >= -0.0000000000000000000000000000012339", "false")
	add("-0 == 0", "true")
	add("1e-300 > 0", "true")
	add("new.a > 12345678901234567890.1234567890123456789", "false")
	add("new.a == 12345678901234567890.1234567890123456789", "true")

	// Into text: the plain decimal.
	add(`"${0.07 * 0.2}"`, `0.014`) // a lone interpolation is its value, not text
	add(`"${0.07 * 0.2} EUR"`, `"0.014 EUR"`)
	add(`"v=${1e20 + 1}"`, `"v=100000000000000000001"`)
	add(`tostring(new.e * 2)`, `"200000000000000000000"`)
	add(`tostring(1.0001 * 0.2)`, `"0.20002"`)
	add(`format("%s", -0.0000000001 * 0.2)`, `"-0.00000000002"`)
	add(`format("%d", 1e20 + 1)`, `"100000000000000000001"`)
	add(`jsonencode(0.1000000000 + 1e-20)`, `"0.10000000000000000001"`)
	add(`jsonencode({ v = new.i + 1 })`, `"{\"v\":9223372036854775808}"`)
	add(`join(",", [0.07 * 0.2, 1e20])`, `"0.014,100000000000000000000"`)
	return cases
}

func evalLit(expr string) *big.Rat {
	switch expr {
	case "1e20 + 0.5":
		return rat("100000000000000000000.5")
	case "-1e20 - 0.5":
		return rat("-100000000000000000000.5")
	}
	return rat(expr)
}

func maxRat(a, b *big.Rat) *big.Rat {
	if a.Cmp(b) >= 0 {
		return a
	}
	return b
}

func minRat(a, b *big.Rat) *big.Rat {
	if a.Cmp(b) <= 0 {
		return a
	}
	return b
}

func floorRat(r *big.Rat) *big.Int {
	return new(big.Int).Div(r.Num(), r.Denom()) // Euclidean: the floor, as a Rat's denominator is positive
}

func ceilRat(r *big.Rat) *big.Int {
	f := floorRat(r)
	if !r.IsInt() {
		f.Add(f, big.NewInt(1))
	}
	return f
}

// sqrt2 is √2 to 200 bits.
func sqrt2() *big.Rat {
	f := new(big.Float).SetPrec(200).SetInt64(2)
	r, _ := f.Sqrt(f).Rat(nil)
	return r
}

// round15 rounds to 15 significant digits through big.Float's decimal
// conversion at 200 bits.
func round15(r *big.Rat) *big.Rat {
	f := new(big.Float).SetPrec(200).SetRat(r)
	return rat(f.Text('e', 14))
}

// TestNumbersExactThroughRules checks every expression of numCases
// evaluates to its independently computed value on the real rules path, and
// that the data validates against the schema derived for the rule.
func TestNumbersExactThroughRules(t *testing.T) {
	t.Parallel()
	cases := numCases()
	if len(cases) < 200 {
		t.Fatalf("only %d expressions", len(cases))
	}
	table := numTable()
	checked := 0
	// Most expressions share a schema ({v: number}): compile each once.
	compiled := map[string]*jsonschema.Schema{}
	for i, tc := range cases {
		block := fmt.Sprintf("event \"n%d\" {\n  table = \"nums\"\n  on    = [\"insert\"]\n  data  = { v = %s }\n}\n", i, tc.expr)
		e, _ := parseEvent(t, block)
		schema := DataSchema(e, table)
		cs := compiled[marshal(t, schema)]
		if cs == nil {
			cs = compile(t, schema)
			compiled[marshal(t, schema)] = cs
		}
		r := compileRules(t, block)
		c := &cdc.Change{Schema: "public", Table: "nums", Op: cdc.OpInsert, New: numRow, Columns: numColumns, Key: []string{"i"}}
		evs, failures := r.Evaluate(c, nil)
		if tc.wantErr != "" {
			if len(failures) != 1 || !strings.Contains(failures[0].Error, tc.wantErr) {
				t.Errorf("%s: failures %v, want one with %q", tc.expr, failures, tc.wantErr)
			}
			checked++
			continue
		}
		if len(failures) > 0 || len(evs) != 1 {
			t.Errorf("%s: events %d, failures %v", tc.expr, len(evs), failures)
			continue
		}
		if got, want := string(evs[0].Data), `{"v":`+tc.want+`}`; got != want {
			t.Errorf("%s:\n got %s\nwant %s", tc.expr, got, want)
		}
		if err := accepts(t, cs, string(evs[0].Data)); err != nil {
			t.Errorf("%s: %s does not validate against %s: %v", tc.expr, evs[0].Data, marshal(t, DataSchema(e, table)), err)
		}
		checked++
	}
	t.Logf("%d expressions checked", checked)
}

// TestNumbersExactThroughBody runs arithmetic in an endpoint body on an
// event's data and checks the rendered body and its schema.
func TestNumbersExactThroughBody(t *testing.T) {
	t.Parallel()
	table := numTable()
	cases := []numCase{
		{expr: "event.data.d * 0.2", want: "0.014"},
		{expr: "event.data.e * 3", want: "300000000000000000000"},
		{expr: "event.data.a - 0.12345678901234567890", want: "12345678901234567890"},
		{expr: "event.data.e", want: "100000000000000000000"},
		{expr: "event.data.b * 0.2", want: plain(new(big.Rat).Mul(rat("-0.000000000000000000000000000001234"), rat("0.2")))},
		{expr: "event.data.i + 1", want: "9223372036854775808"},
		{expr: "event.data.meta.price * 1000", want: "1234567890123456789012345678"},
	}
	for _, tc := range cases {
		block := fmt.Sprintf(`event "nums.changed" {
  table = "nums"
  on    = ["insert"]
}
endpoint "hook" {
  url    = "https://example.com/hook"
  events = ["*"]
  secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
  body   = { v = %s }
}`, tc.expr)
		e, endpoints := parseEvent(t, block)
		described := Describe(e, table, endpoints)
		cs := compile(t, described.Bodies[0].Schema)
		r := compileRules(t, block)
		evs, failures := r.Evaluate(&cdc.Change{Schema: "public", Table: "nums", Op: cdc.OpInsert, New: numRow, Columns: numColumns, Key: []string{"i"}}, nil)
		if len(failures) > 0 || len(evs) != 1 {
			t.Fatalf("%s: events %d, failures %v", tc.expr, len(evs), failures)
		}
		b, err := rules.RenderBody(endpoints[0], &evs[0])
		if err != nil {
			t.Fatalf("%s: %v", tc.expr, err)
		}
		if got, want := string(b), `{"v":`+tc.want+`}`; got != want {
			t.Errorf("%s:\n got %s\nwant %s", tc.expr, got, want)
		}
		if err := accepts(t, cs, string(b)); err != nil {
			t.Errorf("%s: %s does not validate: %v", tc.expr, b, err)
		}
	}
}
