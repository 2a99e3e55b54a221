// Package rules turns captured row changes into named events, following the
// event blocks of the config.
//
// Each event block is a rule for one table and a set of operations. Compile
// indexes the rules by table and operation; Evaluate runs, for one change,
// the rules of its table and operation in config order, and appends one
// event for each rule whose `when` holds (no `when`: always).
//
// A rule's expressions see these variables:
//
//   - new, old: objects of column values. old is null on insert, new is null
//     on delete; both are null on truncate. On an update, old holds only the
//     replica identity (key) columns unless the table has REPLICA IDENTITY
//     FULL. Columns whose large (TOASTed) values an update did not touch are
//     not sent by Postgres: with REPLICA IDENTITY FULL new carries them from
//     the old row (new is always the whole row); without it they are absent
//     from new, reading one is an error (a Failure), so write
//     try(new.col, null) when a rule must cope.
//   - op: "insert", "update", "delete", "truncate", or "read" for a row a
//     backfill read from the table (new is the row, old is null).
//   - table: "schema.table".
//   - tx: {id, lsn, commit_time} of the transaction.
//   - changed: on an update of a table with REPLICA IDENTITY FULL, the names
//     of the columns whose values differ between old and new (unchanged
//     TOASTed columns count as unchanged), in table order; null otherwise.
//
// Defaults: data is new (old on delete, null on truncate), written as JSON in
// table column order with exact numbers; key is the replica identity columns'
// values from new (old on delete) joined with ":" ("42", "7:abc"); tenant is
// empty. A key or tenant expression that yields null means empty.
//
// A rule that fails on one change (an error in when, key, tenant or data, a
// when that is null or not a bool, a key that is not a string or number) does
// not stop anything: Evaluate returns an event.Failure naming the rule, the
// change's position and the error, and goes on with the other rules.
package rules
