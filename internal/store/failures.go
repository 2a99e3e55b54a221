package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// RecordFailures stores failed rule evaluations in one round trip. A
// failure already stored (same commit LSN, position and rule) is kept as it
// is, so a change replayed after a crash is recorded once. A Row that is
// not valid JSON is stored as a JSON string.
func (s *Store) RecordFailures(ctx context.Context, fs []FailedEvaluation) error {
	return s.recordFailures(ctx, s.pool, fs)
}

func (s *Store) recordFailures(ctx context.Context, db execer, fs []FailedEvaluation) error {
	if len(fs) == 0 {
		return nil
	}
	n := len(fs)
	rule, table, op, errs, row := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]*string, n)
	xid, lsn := make([]int64, n), make([]int64, n)
	pos := make([]int32, n)
	for i, f := range fs {
		rule[i], table[i], op[i], errs[i] = f.Rule, f.Table, f.Op, f.Error
		xid[i], lsn[i], pos[i] = int64(f.XID), int64(f.CommitLSN), int32(f.Position)
		if len(f.Row) > 0 {
			r := string(f.Row)
			if !json.Valid(f.Row) {
				b, _ := json.Marshal(r) // marshalling a string cannot fail
				r = string(b)
			}
			row[i] = &r
		}
	}
	_, err := db.Exec(ctx, s.sql(`INSERT INTO {s}.failed_evaluations (rule, table_name, op, xid, commit_lsn, position, error, row)
		SELECT rule, table_name, op, xid, commit_lsn, position, error, row::jsonb
		FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::int[], $7::text[], $8::text[])
			AS u(rule, table_name, op, xid, commit_lsn, position, error, row)
		ON CONFLICT (commit_lsn, position, rule) DO NOTHING`),
		rule, table, op, xid, lsn, pos, errs, row)
	if err != nil {
		return fmt.Errorf("recording %d failed evaluations: %w", n, err)
	}
	return nil
}

// ListFailedEvaluations returns the newest failed evaluations first.
func (s *Store) ListFailedEvaluations(ctx context.Context, limit int) ([]FailedEvaluation, error) {
	rows, err := s.pool.Query(ctx, s.sql(`SELECT id, rule, table_name, op, xid, commit_lsn, position, error,
		coalesce(row::text, ''), created_at FROM {s}.failed_evaluations ORDER BY id DESC LIMIT $1`), listLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("listing failed evaluations: %w", err)
	}
	fs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (FailedEvaluation, error) {
		var f FailedEvaluation
		var xid, lsn int64
		var row string
		err := r.Scan(&f.ID, &f.Rule, &f.Table, &f.Op, &xid, &lsn, &f.Position, &f.Error, &row, &f.CreatedAt)
		f.XID, f.CommitLSN = uint32(xid), uint64(lsn)
		if row != "" {
			f.Row = []byte(row)
		}
		return f, err
	})
	if err != nil {
		return nil, fmt.Errorf("listing failed evaluations: %w", err)
	}
	return fs, nil
}
