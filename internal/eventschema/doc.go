// Package eventschema describes what endpoints receive for each event as a
// JSON Schema (2020-12), with an example payload built from the schema.
//
// The schema is derived, not written by hand: the default data of a rule is
// its table's row, typed from the database catalog (cdc.LookupTable) the
// way the Reader decodes each column type (cdc.ValueType); a custom data or
// body expression is described as precisely as its shape allows (objects
// and lists built in place, columns copied, conditionals, merge, coalesce,
// try, functions with a known result type) and falls back to an open object
// or any value where it cannot tell. It follows what the Reader sends per
// operation: old holds only the key columns without REPLICA IDENTITY FULL,
// and an update without FULL may lack unchanged TOASTed columns of new.
package eventschema
