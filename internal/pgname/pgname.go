// Package pgname reads Postgres object names as walhook's packages accept
// them.
package pgname

import (
	"fmt"
	"strings"
)

// SplitTable splits "schema.table", or "table" (in schema public).
func SplitTable(name string) (schema, table string, err error) {
	schema, table, ok := strings.Cut(name, ".")
	if !ok {
		schema, table = "public", name
	}
	if schema == "" || table == "" || strings.Contains(table, ".") {
		return "", "", fmt.Errorf("table %q is not of the form schema.table", name)
	}
	return schema, table, nil
}
