package eventschema

import (
	"encoding/json"
	"strings"
)

// Example builds a JSON value that s accepts: every property of an object,
// one element of a list, the first choice of an anyOf or enum that is not
// null, and a typical value of each type and format.
func Example(s *Schema) json.RawMessage {
	b, err := json.Marshal(example(s))
	if err != nil { // example only builds marshalable values
		panic(err)
	}
	return b
}

// orderedObject is an example object that keeps its properties' order.
type orderedObject []orderedMember

type orderedMember struct {
	name  string
	value any
}

// MarshalJSON writes the members in order.
func (o orderedObject) MarshalJSON() ([]byte, error) {
	return marshalObject(len(o), func(i int) (string, any) { return o[i].name, o[i].value })
}

func example(s *Schema) any {
	switch {
	case s.Const != nil:
		return s.Const
	case len(s.Examples) > 0:
		return s.Examples[0]
	case len(s.Enum) > 0:
		for _, e := range s.Enum {
			if e != nil {
				return e
			}
		}
		return nil
	case s.AnyOf != nil:
		for _, o := range s.AnyOf {
			if !o.isNull() {
				return example(o)
			}
		}
		return nil
	}
	t := ""
	for _, x := range s.Type {
		if x != "null" {
			t = x
			break
		}
	}
	if t == "" && len(s.Type) > 0 {
		return nil
	}
	switch t {
	case "object":
		obj := orderedObject{}
		for _, p := range s.Properties {
			obj = append(obj, orderedMember{p.Name, example(p.Schema)})
		}
		return obj
	case "array":
		var arr []any
		for _, p := range s.PrefixItems {
			arr = append(arr, example(p))
		}
		if s.PrefixItems == nil && s.Items != nil {
			arr = append(arr, example(s.Items))
		}
		if arr == nil {
			arr = []any{}
		}
		return arr
	case "integer":
		return 42
	case "number":
		return json.Number("12.50")
	case "boolean":
		return true
	case "string":
		return exampleString(s)
	}
	// {}: any value; a JSON object is the usual content of a json column.
	return orderedObject{{"key", "value"}}
}

func exampleString(s *Schema) string {
	var v string
	switch {
	case s.Format == "date-time":
		v = "2026-11-23T14:05:06.123456Z"
	case s.Format == "date":
		v = "2026-11-23"
	case s.Format == "uuid":
		v = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
	case s.ContentEncoding == "base64":
		v = "d2FsaG9vaw=="
	default:
		v = "walhook"
	}
	if s.MaxLength > 0 && len(v) > s.MaxLength {
		v = strings.Repeat("w", s.MaxLength)
	}
	return v
}
