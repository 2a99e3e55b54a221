package eventschema

import (
	"bytes"
	"encoding/json"
)

// Draft is the JSON Schema dialect of every schema this package writes.
const Draft = "https://json-schema.org/draft/2020-12/schema"

// Schema is one JSON Schema (2020-12) node. Its keywords are written in the
// order of the fields; the zero Schema is {} (any value).
type Schema struct {
	Draft       string `json:"$schema,omitempty"`
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	// Type is one type name or several ("string", ["integer", "null"]).
	Type            Types           `json:"type,omitempty"`
	Format          string          `json:"format,omitempty"`
	ContentEncoding string          `json:"contentEncoding,omitempty"`
	MaxLength       int             `json:"maxLength,omitempty"`
	Pattern         string          `json:"pattern,omitempty"`
	Const           json.RawMessage `json:"const,omitempty"`
	Enum            []any           `json:"enum,omitempty"`
	Properties      Properties      `json:"properties,omitempty"`
	Required        []string        `json:"required,omitempty"`
	// AdditionalProperties false closes an object to the properties listed.
	AdditionalProperties *bool     `json:"additionalProperties,omitempty"`
	PrefixItems          []*Schema `json:"prefixItems,omitempty"`
	Items                *Schema   `json:"items,omitempty"`
	MinItems             *int      `json:"minItems,omitempty"`
	MaxItems             *int      `json:"maxItems,omitempty"`
	AnyOf                []*Schema `json:"anyOf,omitempty"`
	Examples             []any     `json:"examples,omitempty"`
	// PostgresType is the column's type as Postgres writes it, for a value
	// that comes straight from a column (an annotation validators ignore).
	PostgresType string `json:"x-postgres-type,omitempty"`
	// Raw, when set, is the schema as written by the config (an outbox
	// event's declared payload schema): it is written instead of the
	// fields, which hold what this package reads of it.
	Raw json.RawMessage `json:"-"`
}

// schemaFields is Schema without its MarshalJSON.
type schemaFields Schema

// MarshalJSON writes Raw when set, else the keywords of the fields.
func (s Schema) MarshalJSON() ([]byte, error) {
	if s.Raw != nil {
		return s.Raw, nil
	}
	return json.Marshal(schemaFields(s))
}

// Types is a JSON Schema "type": written as a string when there is one.
type Types []string

// MarshalJSON writes one type as a string, several as an array.
func (t Types) MarshalJSON() ([]byte, error) {
	if len(t) == 1 {
		return json.Marshal(t[0])
	}
	return json.Marshal([]string(t))
}

// UnmarshalJSON reads a string or an array of strings.
func (t *Types) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*t = Types{one}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(t))
}

// Property is one named property of an object schema.
type Property struct {
	Name   string
	Schema *Schema
}

// Properties are an object's properties in order (table column order).
type Properties []Property

// MarshalJSON writes the properties as a JSON object, in order.
func (ps Properties) MarshalJSON() ([]byte, error) {
	return marshalObject(len(ps), func(i int) (string, any) { return ps[i].Name, ps[i].Schema })
}

// marshalObject writes a JSON object of n members, in the order member
// gives them.
func marshalObject(n int, member func(i int) (string, any)) ([]byte, error) {
	b := []byte{'{'}
	for i := 0; i < n; i++ {
		name, value := member(i)
		k, err := json.Marshal(name)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(value)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(append(append(b, k...), ':'), v...)
	}
	return append(b, '}'), nil
}

// UnmarshalJSON reads a JSON object of schemas, keeping its order.
func (ps *Properties) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil { // {
		return err
	}
	*ps = nil
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := tok.(string)
		var s Schema
		if err := dec.Decode(&s); err != nil {
			return err
		}
		*ps = append(*ps, Property{Name: name, Schema: &s})
	}
	_, err := dec.Token() // }
	return err
}

// Get returns the named property's schema, or nil.
func (ps Properties) Get(name string) *Schema {
	for _, p := range ps {
		if p.Name == name {
			return p.Schema
		}
	}
	return nil
}

// set adds or replaces a property, keeping the first position.
func (ps Properties) set(name string, s *Schema) Properties {
	for i := range ps {
		if ps[i].Name == name {
			ps[i].Schema = s
			return ps
		}
	}
	return append(ps, Property{Name: name, Schema: s})
}

func typed(t ...string) *Schema { return &Schema{Type: Types(t)} }

func boolPtr(b bool) *bool { return &b }
func intPtr(n int) *int    { return &n }

// constOf is a schema holding exactly the JSON value v.
func constOf(v any) *Schema {
	b, err := json.Marshal(v)
	if err != nil {
		return &Schema{}
	}
	return &Schema{Const: b}
}

// isAny reports whether s accepts any value (the empty schema).
func (s *Schema) isAny() bool {
	b, _ := json.Marshal(s)
	return string(b) == "{}"
}

// isNull reports whether s is exactly {"type": "null"}.
func (s *Schema) isNull() bool {
	return len(s.Type) == 1 && s.Type[0] == "null" && s.AnyOf == nil
}

// closedObject reports whether s is an object whose properties are all
// known (additionalProperties false).
func (s *Schema) closedObject() bool {
	return len(s.Type) == 1 && s.Type[0] == "object" && s.AdditionalProperties != nil && !*s.AdditionalProperties
}

// hasType reports whether s allows JSON type t by its type keyword.
func (s *Schema) hasType(t string) bool {
	for _, x := range s.Type {
		if x == t {
			return true
		}
	}
	return false
}

// oneOfThese is a schema any of options satisfies: nested anyOf are
// flattened, duplicates dropped; one option is itself, and an option that
// accepts anything makes the whole accept anything.
func oneOfThese(options ...*Schema) *Schema {
	var flat []*Schema
	seen := map[string]bool{}
	var add func(s *Schema)
	add = func(s *Schema) {
		bare := *s
		bare.AnyOf = nil
		if s.AnyOf != nil && bare.isAny() { // nothing besides anyOf: flatten it
			for _, o := range s.AnyOf {
				add(o)
			}
			return
		}
		b, _ := json.Marshal(s)
		if seen[string(b)] {
			return
		}
		seen[string(b)] = true
		flat = append(flat, s)
	}
	for _, o := range options {
		add(o)
	}
	for _, s := range flat {
		if s.isAny() {
			return &Schema{}
		}
	}
	if len(flat) == 1 {
		return flat[0]
	}
	return &Schema{AnyOf: flat}
}

// orNull is s that also allows null.
func orNull(s *Schema) *Schema {
	switch {
	case s.isAny() || s.hasType("null"):
		return s
	case s.Const == nil && s.AnyOf == nil && len(s.Type) > 0:
		c := *s
		c.Type = append(append(Types(nil), s.Type...), "null")
		if c.Enum != nil {
			c.Enum = append(append([]any(nil), s.Enum...), nil)
		}
		return &c
	}
	return oneOfThese(s, typed("null"))
}

// withoutNull is s that does not allow null (what coalesce returns).
func withoutNull(s *Schema) *Schema {
	if s.isNull() {
		return nil
	}
	if s.AnyOf != nil {
		var keep []*Schema
		for _, o := range s.AnyOf {
			if w := withoutNull(o); w != nil {
				keep = append(keep, w)
			}
		}
		if len(keep) == 0 {
			return nil
		}
		return oneOfThese(keep...)
	}
	if len(s.Type) > 1 && s.hasType("null") {
		c := *s
		c.Type = nil
		for _, t := range s.Type {
			if t != "null" {
				c.Type = append(c.Type, t)
			}
		}
		if c.Enum != nil {
			c.Enum = nil
			for _, e := range s.Enum {
				if e != nil {
					c.Enum = append(c.Enum, e)
				}
			}
		}
		return &c
	}
	return s
}
