package eventschema

import (
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/walhook/walhook/cdc"
)

// ColumnSchema describes the JSON values walhook writes for a column: the
// form the Reader decodes its type to (see cdc.Change), null unless the
// column is NOT NULL.
func ColumnSchema(c *cdc.Column) *Schema {
	s := valueSchema(c.Type, c)
	if !c.NotNull {
		s = orNull(s)
	}
	s.PostgresType = c.SQLType
	return s
}

// valueSchema is the schema of non-null values of type vt; col, when given,
// adds what the catalog knows (length, enum labels).
func valueSchema(vt cdc.ValueType, col *cdc.Column) *Schema {
	switch vt.Kind {
	case cdc.KindInteger:
		return typed("integer")
	case cdc.KindNumeric, cdc.KindFloat:
		// NaN and the infinities have no JSON number: they are strings.
		return &Schema{AnyOf: []*Schema{typed("number"), {Type: Types{"string"}, Enum: []any{"NaN", "Infinity", "-Infinity"}}}}
	case cdc.KindBool:
		return typed("boolean")
	case cdc.KindTimestamptz, cdc.KindTimestamp:
		return specialDates(&Schema{Type: Types{"string"}, Format: "date-time"})
	case cdc.KindJSON:
		return &Schema{}
	case cdc.KindBytea:
		return &Schema{Type: Types{"string"}, ContentEncoding: "base64"}
	case cdc.KindArray:
		elem := orNull(valueSchema(*vt.Elem, col))
		// Multidimensional arrays nest: an element may be an array itself.
		return &Schema{Type: Types{"array"}, Items: oneOfThese(elem, typed("array"))}
	}
	s := typed("string")
	switch vt.OID {
	case pgtype.UUIDOID:
		s.Format = "uuid"
	case pgtype.DateOID:
		return specialDates(&Schema{Type: Types{"string"}, Format: "date"})
	}
	if col != nil {
		s.MaxLength = col.MaxLength
		for _, label := range col.Enum {
			s.Enum = append(s.Enum, label)
		}
	}
	return s
}

// rowSchema is the object of a row's columns: all of them, or only the key
// columns (an old row without REPLICA IDENTITY FULL). required lists the
// columns that are always present.
func rowSchema(t *cdc.Table, keysOnly bool, required func(c *cdc.Column) bool) *Schema {
	s := &Schema{Type: Types{"object"}, AdditionalProperties: boolPtr(false)}
	for i := range t.Columns {
		c := &t.Columns[i]
		if keysOnly && !t.IsKey(c.Name) {
			continue
		}
		s.Properties = append(s.Properties, Property{Name: c.Name, Schema: ColumnSchema(c)})
		if required(c) {
			s.Required = append(s.Required, c.Name)
		}
	}
	if s.Properties == nil {
		s.Properties = Properties{}
	}
	return s
}

func always(*cdc.Column) bool { return true }

// rows are the schemas of new and old for one operation on a table.
type rows struct {
	new, old *Schema
}

// rowsFor describes new and old for op on t, as the Reader fills them: new
// lacks unchanged TOASTed columns on an update without REPLICA IDENTITY
// FULL; old is the whole row with FULL, else only the key columns (and null
// on an update that did not change the key).
func rowsFor(t *cdc.Table, op string) rows {
	null := typed("null")
	full := t.FullIdentity()
	whole := rowSchema(t, false, always)
	keys := rowSchema(t, true, always)
	switch op {
	case "insert", "read": // read: a row a backfill read, new the whole row
		return rows{new: whole, old: null}
	case "update":
		r := rows{new: whole, old: whole}
		if !full {
			r.new = rowSchema(t, false, func(c *cdc.Column) bool { return !c.Toastable || t.IsKey(c.Name) })
			r.old = oneOfThese(keys, null)
		}
		return r
	case "delete":
		if full {
			return rows{new: null, old: whole}
		}
		return rows{new: null, old: keys}
	}
	return rows{new: null, old: null} // truncate
}

// defaultData is the schema of the default data for op on table
// ("schema.table"): new, old on delete, and on truncate the table and the
// operation.
func (r rows) defaultData(op, table string) *Schema {
	switch op {
	case "delete":
		return r.old
	case "truncate":
		return &Schema{
			Type: Types{"object"}, AdditionalProperties: boolPtr(false),
			Properties: Properties{{"table", constOf(table)}, {"op", constOf("truncate")}},
			Required:   []string{"table", "op"},
		}
	}
	return r.new
}

// specialDates is a date or timestamp schema that also admits what
// Postgres writes outside RFC 3339 and walhook passes on as is: infinity,
// -infinity and BC values ("0044-03-15 BC"), so a validator that asserts
// formats accepts every value sent.
func specialDates(s *Schema) *Schema {
	return &Schema{AnyOf: []*Schema{s,
		{Type: Types{"string"}, Enum: []any{"infinity", "-infinity"}},
		{Type: Types{"string"}, Pattern: " BC$"},
	}}
}
