package rules

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/zclconf/go-cty/cty"
)

// appendRow writes row as a JSON object, columns in table order (columns),
// then any others sorted.
func appendRow(b []byte, row map[string]any, columns []string) []byte {
	b = append(b, '{')
	n := 0
	for _, col := range columns {
		v, ok := row[col]
		if !ok {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		b = appendString(b, col)
		b = append(b, ':')
		b = appendGo(b, v)
		n++
	}
	if n < len(row) {
		inColumns := make(map[string]bool, len(columns))
		for _, c := range columns {
			inColumns[c] = true
		}
		rest := make([]string, 0, len(row)-n)
		for k := range row {
			if !inColumns[k] {
				rest = append(rest, k)
			}
		}
		sort.Strings(rest)
		for _, k := range rest {
			if n > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendGo(b, row[k])
			n++
		}
	}
	return append(b, '}')
}

// appendGo writes a decoded column value as JSON.
func appendGo(b []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...)
	case string:
		return appendString(b, x)
	case int64:
		return strconv.AppendInt(b, x, 10)
	case bool:
		return strconv.AppendBool(b, x)
	case json.Number:
		if isJSONNumber(string(x)) {
			return append(b, x...)
		}
		return appendString(b, string(x))
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return appendString(b, strconv.FormatFloat(x, 'g', -1, 64))
		}
		return strconv.AppendFloat(b, x, 'g', -1, 64)
	case json.RawMessage:
		if json.Valid(x) {
			return append(b, x...)
		}
		return appendString(b, string(x))
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendGo(b, e)
		}
		return append(b, ']')
	case map[string]any:
		return appendRow(b, x, nil)
	default:
		out, err := json.Marshal(x)
		if err != nil {
			return appendString(b, fmt.Sprint(x))
		}
		return append(b, out...)
	}
}

// isJSONNumber reports whether s is a number in JSON's grammar.
func isJSONNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	start := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == start || (s[start] == '0' && i-start > 1) {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		f := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == f {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		f := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == f {
			return false
		}
	}
	return i == len(s)
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendCty writes v as JSON with exact numbers: a number that passed
// through unchanged from a column or JSON value is written as its source text
// (see exactNumber). Object attributes come in the order of order (the
// table's columns) first, then the rest sorted.
func appendCty(b []byte, v cty.Value, order []string) ([]byte, error) {
	return appendValue(b, v, order, nil)
}

// appendValue is appendCty; inherited are the marks of the containers
// around v (a function such as coalesce moves its arguments' marks onto its
// whole result).
func appendValue(b []byte, v cty.Value, order []string, inherited cty.ValueMarks) ([]byte, error) {
	v, marks := v.Unmark()
	if !v.IsKnown() {
		return nil, fmt.Errorf("value is not known")
	}
	if v.IsNull() {
		return append(b, "null"...), nil
	}
	ty := v.Type()
	if ty == cty.Number {
		f := v.AsBigFloat()
		if text, ok := exactText(f, marks); ok {
			return append(b, text...), nil
		}
		if text, ok := exactText(f, inherited); ok && len(marks) == 0 {
			return append(b, text...), nil
		}
		return appendNumber(b, f)
	}
	if len(marks) > 0 {
		if inherited == nil {
			inherited = marks
		} else {
			inherited = cty.NewValueMarks(inherited, marks)
		}
	}
	switch {
	case ty == cty.String:
		return appendString(b, v.AsString()), nil
	case ty == cty.Bool:
		return strconv.AppendBool(b, v.True()), nil
	case ty.IsListType() || ty.IsSetType() || ty.IsTupleType():
		b = append(b, '[')
		i := 0
		var err error
		for it := v.ElementIterator(); it.Next(); i++ {
			_, e := it.Element()
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendValue(b, e, nil, inherited); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case ty.IsObjectType():
		return appendObject(b, v, ty, order, inherited)
	case ty.IsMapType():
		b = append(b, '{')
		i := 0
		var err error
		for it := v.ElementIterator(); it.Next(); i++ {
			k, e := it.Element()
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k.AsString())
			b = append(b, ':')
			if b, err = appendValue(b, e, nil, inherited); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	}
	return nil, fmt.Errorf("cannot write a %s as JSON", ty.FriendlyName())
}

func appendObject(b []byte, v cty.Value, ty cty.Type, order []string, inherited cty.ValueMarks) ([]byte, error) {
	attrs := ty.AttributeTypes()
	names := make([]string, 0, len(attrs))
	for _, col := range order {
		if _, ok := attrs[col]; ok {
			names = append(names, col)
		}
	}
	if len(names) < len(attrs) {
		rest := make([]string, 0, len(attrs)-len(names))
		for k := range attrs {
			if !containsString(order, k) {
				rest = append(rest, k)
			}
		}
		sort.Strings(rest)
		names = append(names, rest...)
	}
	b = append(b, '{')
	var err error
	for i, k := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		if b, err = appendValue(b, v.GetAttr(k), nil, inherited); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
