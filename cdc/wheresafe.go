package cdc

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrUnsafeCondition is a where clause that could do more than filter the
// table's rows: it calls a volatile function or operator (nextval,
// pg_sleep, pg_terminate_backend, random, ...), reads another table or
// view, or holds a subquery.
var ErrUnsafeCondition = errors.New("the where clause may only filter the table's own rows")

// whereCheckView is the temporary view checkWhere has Postgres resolve the
// clause into; it never outlives the rolled-back transaction.
const whereCheckView = "walhook_where_check"

// checkWhere lets Postgres resolve the where clause, in a transaction it
// rolls back, into a temporary view over the table, and reads what the
// view depends on: every function and operator must be immutable or
// stable, the only relation the table itself, and there must be no
// subquery. So a clause runs as walhook only if it can do nothing but
// compare values of the row (the reads are also read-only and bounded by
// statement_timeout). Errors wrap ErrUnsafeCondition, or are the
// database's own when the clause does not resolve.
func (tr *TableReader) checkWhere(ctx context.Context) (err error) {
	if _, err := tr.conn.Exec(ctx, "BEGIN READ WRITE").ReadAll(); err != nil {
		return fmt.Errorf("checking the where clause: %w", err)
	}
	defer func() {
		if _, rerr := tr.conn.Exec(context.WithoutCancel(ctx), "ROLLBACK").ReadAll(); rerr != nil && err == nil {
			err = fmt.Errorf("checking the where clause: %w", rerr)
		}
	}()
	create := "CREATE TEMPORARY VIEW " + whereCheckView + " AS SELECT 1 AS one FROM " + tr.qualified() + " WHERE (" + tr.where + ")"
	if _, err := tr.conn.Exec(ctx, create).ReadAll(); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42501" && strings.Contains(pgErr.Message, "temporary") {
			return fmt.Errorf("checking the where clause %q: walhook's role may not create temporary objects, which the check needs (GRANT TEMPORARY ON DATABASE ... TO the role): %w", tr.where, err)
		}
		return fmt.Errorf("checking the where clause %q on %s: %w", tr.where, tr.qualified(), err)
	}
	// The view's rule holds the resolved clause as a node tree: every
	// function (funcid, opfuncid), operator (opno) and relation (relid)
	// it uses is there by oid, built-in ones too (pg_depend leaves out
	// pinned objects, so it cannot be used).
	res := tr.conn.ExecParams(ctx, `WITH rule AS (
			SELECT r.ev_class, r.ev_action::text AS tree FROM pg_rewrite r
			WHERE r.ev_class = to_regclass('pg_temp.`+whereCheckView+`')),
		ref AS (
			SELECT DISTINCT m[1] AS kind, m[2]::oid AS oid, rule.ev_class
			FROM rule, regexp_matches(rule.tree, ':(funcid|opfuncid|aggfnoid|winfnoid|opno|relid) (\d+)', 'g') m)
		SELECT 'function ' || ref.oid::regprocedure::text, p.provolatile::text, false
		FROM ref JOIN pg_proc p ON p.oid = ref.oid WHERE ref.kind IN ('funcid', 'opfuncid', 'aggfnoid', 'winfnoid')
		UNION ALL
		SELECT 'operator ' || ref.oid::regoperator::text, p.provolatile::text, false
		FROM ref JOIN pg_operator o ON o.oid = ref.oid JOIN pg_proc p ON p.oid = o.oprcode WHERE ref.kind = 'opno'
		UNION ALL
		SELECT 'relation ' || ref.oid::regclass::text, '', true
		FROM ref WHERE ref.kind = 'relid' AND ref.oid NOT IN (to_regclass($1)::oid, ref.ev_class)
		UNION ALL
		SELECT 'subquery', '', false FROM rule WHERE rule.tree LIKE '%{SUBLINK %'`,
		[][]byte{[]byte(tr.qualified())}, nil, nil, nil).Read()
	if res.Err != nil {
		return fmt.Errorf("checking the where clause %q: %w", tr.where, res.Err)
	}
	var refused []string
	for _, row := range res.Rows {
		what, volatility, foreign := string(row[0]), string(row[1]), string(row[2]) == "t"
		switch {
		case what == "subquery":
			refused = append(refused, "a subquery")
		case foreign:
			refused = append(refused, what+" (only the table's own columns may be used)")
		case volatility == "v":
			refused = append(refused, what+" (volatile: it may change something or differ on every call)")
		}
	}
	if len(refused) > 0 {
		return fmt.Errorf("%w: %q on %s uses %s", ErrUnsafeCondition, tr.where, tr.qualified(), strings.Join(dedupe(refused), ", "))
	}
	return nil
}

// dedupe drops repeated strings, keeping the first of each.
func dedupe(ss []string) []string {
	seen := make(map[string]bool, len(ss))
	out := ss[:0]
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
