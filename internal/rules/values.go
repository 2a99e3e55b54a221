package rules

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/zclconf/go-cty/cty"
)

// toCty converts a decoded column value (see cdc.Change) to a cty value.
// JSON values become objects, tuples and exact numbers.
func toCty(v any) (cty.Value, error) {
	switch x := v.(type) {
	case nil:
		return cty.NullVal(cty.DynamicPseudoType), nil
	case string:
		return cty.StringVal(x), nil
	case int64:
		return cty.NumberIntVal(x), nil
	case int:
		return cty.NumberIntVal(int64(x)), nil
	case int32:
		return cty.NumberIntVal(int64(x)), nil
	case uint32:
		return cty.NumberUIntVal(uint64(x)), nil
	case bool:
		return cty.BoolVal(x), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return cty.StringVal(strconv.FormatFloat(x, 'g', -1, 64)), nil
		}
		// As the decimal Postgres writes for it, with that text (1e+20).
		return exactNumberVal(strconv.FormatFloat(x, 'g', -1, 64)), nil
	case json.Number:
		return exactNumberVal(string(x)), nil
	case json.RawMessage:
		v, err := jsonToCty(x)
		if err != nil { // not JSON after all: rules see the text
			return cty.StringVal(string(x)), nil
		}
		return v, nil
	case []any:
		if len(x) == 0 {
			return cty.EmptyTupleVal, nil
		}
		vals := make([]cty.Value, len(x))
		for i, e := range x {
			cv, err := toCty(e)
			if err != nil {
				return cty.NilVal, err
			}
			vals[i] = cv
		}
		return cty.TupleVal(vals), nil
	case map[string]any:
		return objectVal(x, nil)
	default:
		return cty.StringVal(fmt.Sprint(x)), nil
	}
}

// jsonToCty decodes a JSON document to a cty value with exact numbers and
// objects (never maps).
func jsonToCty(raw []byte) (cty.Value, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return cty.NilVal, fmt.Errorf("decoding JSON value: %w", err)
	}
	return toCty(jsonValue(v))
}

// jsonValue turns encoding/json's float-free output into toCty's inputs.
func jsonValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = jsonValue(e)
		}
	case []any:
		for i, e := range x {
			x[i] = jsonValue(e)
		}
	}
	return v
}

// objectVal builds a cty object of row's columns: all of them when attrs is
// nil, else only those of attrs that the row has.
func objectVal(row map[string]any, attrs []string) (cty.Value, error) {
	vals := make(map[string]cty.Value, len(row))
	if attrs == nil {
		for k, v := range row {
			cv, err := toCty(v)
			if err != nil {
				return cty.NilVal, fmt.Errorf("converting column %s: %w", k, err)
			}
			vals[k] = cv
		}
	} else {
		for _, k := range attrs {
			v, ok := row[k]
			if !ok {
				continue
			}
			cv, err := toCty(v)
			if err != nil {
				return cty.NilVal, fmt.Errorf("converting column %s: %w", k, err)
			}
			vals[k] = cv
		}
	}
	if len(vals) == 0 {
		return cty.EmptyObjectVal, nil
	}
	return cty.ObjectVal(vals), nil
}

// ValueText is a column value as key text: "42", "abc", "true"; "" for null.
func ValueText(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case json.Number:
		return string(x)
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case json.RawMessage:
		return string(x)
	default:
		return fmt.Sprint(x)
	}
}

// valuesEqual reports whether two decoded column values are the same.
func valuesEqual(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case string:
		y, ok := b.(string)
		return ok && x == y
	case int64:
		y, ok := b.(int64)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case json.Number:
		y, ok := b.(json.Number)
		return ok && x == y
	case float64:
		y, ok := b.(float64)
		return ok && x == y
	case json.RawMessage:
		y, ok := b.(json.RawMessage)
		return ok && bytes.Equal(x, y)
	}
	return reflect.DeepEqual(a, b)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// numberVal parses a decimal number at cty's precision (512 bits, more for
// longer texts), so arithmetic on it gives the digits one expects (0.10 + 1
// is 1.1). Text that is not a number stays a string.
func numberVal(s string) cty.Value {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return cty.NumberIntVal(n)
	}
	prec := uint(len(s))*4 + 16
	if prec < 512 {
		prec = 512
	}
	f, _, err := big.ParseFloat(s, 10, prec, big.ToNearestEven)
	if err != nil || f.IsInf() {
		return cty.StringVal(s)
	}
	return cty.NumberVal(f)
}

// exactNumber marks a number that came from decimal text which writing the
// number would not reproduce (12000.00, 0.10, 1e-20). cty numbers are
// big.Floats with no scale, so the text travels with the value as a cty
// mark: HCL carries marks through every expression (an attribute copied,
// merge, a conditional), and arithmetic marks its result too. When a value is
// written, a mark whose number equals the value gives the text back (see
// exactText); a value that arithmetic changed no longer equals it and is
// written as a normal number.
type exactNumber struct{ text string }

// exactNumberVal is numberVal, marked with its text when that text carries
// more than the number (a scale, an exponent, a negative zero) and can be
// written as JSON.
func exactNumberVal(s string) cty.Value {
	v := numberVal(s)
	if v.Type() == cty.Number && (strings.ContainsAny(s, ".eE") || strings.HasPrefix(s, "-0")) && isJSONNumber(s) {
		return v.Mark(exactNumber{text: s})
	}
	return v
}

// exactText returns the text of the one exactNumber mark among marks whose
// number equals f; ok is false when there is none, or several texts (0.10
// and 0.100) would fit.
func exactText(f *big.Float, marks cty.ValueMarks) (text string, ok bool) {
	for m := range marks {
		e, isExact := m.(exactNumber)
		if !isExact || (ok && e.text == text) {
			continue
		}
		if !sameDecimal(e.text, f) {
			continue
		}
		if ok {
			return "", false
		}
		text, ok = e.text, true
	}
	return text, ok
}

// sameDecimal reports whether the number text has f's exact decimal.
func sameDecimal(text string, f *big.Float) bool {
	n := numberVal(text)
	if n.Type() != cty.Number {
		return false
	}
	a, err1 := decimalOf(n.AsBigFloat())
	b, err2 := decimalOf(f)
	return err1 == nil && err2 == nil && a.Cmp(b) == 0
}
