package outbox

import (
	"reflect"
	"testing"
)

func TestParseRecord(t *testing.T) {
	str := func(s string) []byte { return []byte(s) }
	cases := []struct {
		in   string
		want [][]byte
	}{
		{"(1,abc,)", [][]byte{str("1"), str("abc"), nil}},
		{`(1,"",x)`, [][]byte{str("1"), str(""), str("x")}},
		{`("a ""quoted"", value","back\\slash",)`, [][]byte{str(`a "quoted", value`), str(`back\slash`), nil}},
		{`(,)`, [][]byte{nil, nil}},
		{`()`, [][]byte{nil}},
		{`("(1,2)","{1,2}")`, [][]byte{str("(1,2)"), str("{1,2}")}},
	}
	for _, c := range cases {
		got, err := parseRecord(c.in)
		if err != nil {
			t.Errorf("parseRecord(%q): %v", c.in, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("parseRecord(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	for _, bad := range []string{"", "1,2", `("abc)`, `("a"b)`} {
		if _, err := parseRecord(bad); err == nil {
			t.Errorf("parseRecord(%q) accepted a malformed row", bad)
		}
	}
}
