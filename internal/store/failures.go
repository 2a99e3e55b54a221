package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// The states of a failed evaluation (docs/operations.md, "Failed
// evaluations"): failed until someone asks for a replay; replay_requested
// until a running walhook claims it; replaying while it re-evaluates and
// dispatches; replayed once the events are settled (delivered or in the
// retry store). A replay that fails again makes it failed, with the new
// error.
const (
	EvaluationFailed          = "failed"
	EvaluationReplayRequested = "replay_requested"
	EvaluationReplaying       = "replaying"
	EvaluationReplayed        = "replayed"
)

// RecordFailures stores failed rule evaluations in one round trip. A
// failure already stored (same commit LSN, position and rule) is kept as it
// is while failed or waiting for a replay, so a change read again after a
// crash is recorded once; one that was being replayed, or had been, is
// failed again with the new error (its replay failed, or the change failed
// again). A Row that is not valid JSON is stored as a JSON string.
func (s *Store) RecordFailures(ctx context.Context, fs []FailedEvaluation) error {
	return s.recordFailures(ctx, s.pool, fs)
}

func (s *Store) recordFailures(ctx context.Context, db execer, fs []FailedEvaluation) error {
	fs = lastOfEachKey(fs)
	if len(fs) == 0 {
		return nil
	}
	n := len(fs)
	rule, table, op, errs := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	evType, evID, endpoint := make([]string, n), make([]string, n), make([]string, n)
	row, old, replay := make([]*string, n), make([]*string, n), make([]*string, n)
	xid, lsn, end := make([]int64, n), make([]int64, n), make([]int64, n)
	pos := make([]int32, n)
	for i, f := range fs {
		rule[i], table[i], op[i], errs[i] = f.Rule, f.Table, f.Op, f.Error
		evType[i], evID[i], endpoint[i] = f.EventType, f.EventID, f.Endpoint
		xid[i], lsn[i], end[i], pos[i] = int64(f.XID), int64(f.CommitLSN), int64(f.EndLSN), int32(f.Position)
		row[i], old[i] = jsonText(f.Row), jsonText(f.Old)
		if len(f.Replay) > 0 {
			r := string(f.Replay)
			replay[i] = &r
		}
	}
	_, err := db.Exec(ctx, s.sql(`INSERT INTO {s}.failed_evaluations AS fe (rule, table_name, op, xid, commit_lsn, end_lsn,
			position, error, row, old_row, event_type, event_id, endpoint_id, replay)
		SELECT rule, table_name, op, xid, commit_lsn, end_lsn, position, error, row::jsonb, old_row::jsonb,
			event_type, event_id, endpoint_id, replay
		FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::int[], $8::text[],
			$9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[])
			AS u(rule, table_name, op, xid, commit_lsn, end_lsn, position, error, row, old_row, event_type, event_id, endpoint_id, replay)
		ON CONFLICT (commit_lsn, position, rule) DO UPDATE SET
			status = 'failed', error = EXCLUDED.error, replay = coalesce(EXCLUDED.replay, fe.replay),
			replays = fe.replays + CASE WHEN fe.status = 'replaying' THEN 1 ELSE 0 END,
			claim = '', claimed_until = NULL, updated_at = now()
		WHERE fe.status IN ('replaying', 'replayed')`),
		rule, table, op, xid, lsn, end, pos, errs, row, old, evType, evID, endpoint, replay)
	if err != nil {
		return fmt.Errorf("recording %d failed evaluations: %w", n, err)
	}
	return nil
}

// lastOfEachKey keeps the last failure of each (commit LSN, position,
// rule): one statement's ON CONFLICT DO UPDATE may not touch a row twice,
// and a batch can hold one change twice (read again after a reconnect
// while its first failures were still on their way to the store).
func lastOfEachKey(fs []FailedEvaluation) []FailedEvaluation {
	type key struct {
		lsn  uint64
		pos  int
		rule string
	}
	at := make(map[key]int, len(fs))
	out := fs[:0:0]
	for _, f := range fs {
		k := key{f.CommitLSN, f.Position, f.Rule}
		if i, seen := at[k]; seen {
			out[i] = f
			continue
		}
		at[k] = len(out)
		out = append(out, f)
	}
	return out
}

// jsonText is b as the text of a jsonb value: nil when empty, a JSON string
// when b is not valid JSON.
func jsonText(b []byte) *string {
	if len(b) == 0 {
		return nil
	}
	r := string(b)
	if !json.Valid(b) {
		q, _ := json.Marshal(r) // marshalling a string cannot fail
		r = string(q)
	}
	return &r
}

// EvaluationFilter selects failed evaluations. Empty fields do not filter.
type EvaluationFilter struct {
	Rule   string
	Table  string // "schema.table"
	Status string
	// NotReplayed leaves out those replayed.
	NotReplayed bool
	Limit       int    // DefaultListLimit when 0, at most MaxListLimit
	Cursor      string // from a previous page
}

const evaluationColumns = `id, rule, table_name, op, xid, commit_lsn, end_lsn, position, error,
	coalesce(row::text, ''), coalesce(old_row::text, ''), event_type, event_id, endpoint_id, replay IS NOT NULL,
	status, replays, replay_events, replay_requested_at, replayed_at, created_at, updated_at`

// ListFailedEvaluations returns the newest failed evaluations not
// replayed yet first.
func (s *Store) ListFailedEvaluations(ctx context.Context, limit int) ([]FailedEvaluation, error) {
	fs, _, err := s.ListEvaluations(ctx, EvaluationFilter{Limit: limit, NotReplayed: true})
	return fs, err
}

// ListEvaluations returns failed evaluations newest first and, when there
// are more, the cursor of the next page (empty on the last page). Replay
// is not read (Replayable says whether there is one).
func (s *Store) ListEvaluations(ctx context.Context, f EvaluationFilter) ([]FailedEvaluation, string, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.Rule != "" {
		where = append(where, "rule = "+arg(f.Rule))
	}
	if f.Table != "" {
		where = append(where, "table_name = "+arg(f.Table))
	}
	if f.Status != "" {
		where = append(where, "status = "+arg(f.Status))
	}
	if f.NotReplayed {
		where = append(where, "status <> 'replayed'")
	}
	if f.Cursor != "" {
		id, err := decodeEvaluationCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		where = append(where, "id < "+arg(id))
	}
	limit := listLimit(f.Limit)
	q := `SELECT ` + evaluationColumns + ` FROM {s}.failed_evaluations`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC LIMIT " + arg(limit+1)
	rows, err := s.pool.Query(ctx, s.sql(q), args...)
	if err != nil {
		return nil, "", fmt.Errorf("listing failed evaluations: %w", err)
	}
	fs, err := pgx.CollectRows(rows, scanEvaluation)
	if err != nil {
		return nil, "", fmt.Errorf("listing failed evaluations: %w", err)
	}
	next := ""
	if len(fs) > limit {
		fs = fs[:limit]
		next = base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(fs[limit-1].ID, 10)))
	}
	return fs, next, nil
}

func decodeEvaluationCursor(c string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, ErrBadCursor
	}
	id, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return 0, ErrBadCursor
	}
	return id, nil
}

// GetEvaluation returns one failed evaluation, or ErrNotFound.
func (s *Store) GetEvaluation(ctx context.Context, id int64) (FailedEvaluation, error) {
	rows, err := s.pool.Query(ctx, s.sql(`SELECT `+evaluationColumns+` FROM {s}.failed_evaluations WHERE id = $1`), id)
	if err != nil {
		return FailedEvaluation{}, fmt.Errorf("reading failed evaluation %d: %w", id, err)
	}
	f, err := pgx.CollectExactlyOneRow(rows, scanEvaluation)
	if err != nil {
		return FailedEvaluation{}, fmt.Errorf("reading failed evaluation %d: %w", id, notFound(err))
	}
	return f, nil
}

func scanEvaluation(r pgx.CollectableRow) (FailedEvaluation, error) {
	var f FailedEvaluation
	var xid, lsn, end int64
	var row, old string
	err := r.Scan(&f.ID, &f.Rule, &f.Table, &f.Op, &xid, &lsn, &end, &f.Position, &f.Error, &row, &old,
		&f.EventType, &f.EventID, &f.Endpoint, &f.Replayable, &f.Status, &f.Replays, &f.ReplayEvents,
		&f.ReplayRequestedAt, &f.ReplayedAt, &f.CreatedAt, &f.UpdatedAt)
	f.XID, f.CommitLSN, f.EndLSN = uint32(xid), uint64(lsn), uint64(end)
	if row != "" {
		f.Row = []byte(row)
	}
	if old != "" {
		f.Old = []byte(old)
	}
	return f, err
}

// RequestReplays asks for a replay of the failed evaluations with these
// ids, whatever their status, except those being replayed now. It returns
// the ids it queued; the others are unknown, cannot be replayed (recorded
// without their change) or are being replayed.
func (s *Store) RequestReplays(ctx context.Context, ids []int64) ([]int64, error) {
	rows, err := s.pool.Query(ctx, s.sql(`UPDATE {s}.failed_evaluations
		SET status = 'replay_requested', replay_requested_at = now(), claim = '', claimed_until = NULL, updated_at = now()
		WHERE id = ANY($1) AND replay IS NOT NULL AND status <> 'replaying'
		RETURNING id`), ids)
	if err != nil {
		return nil, fmt.Errorf("requesting %d replays: %w", len(ids), err)
	}
	queued, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("requesting %d replays: %w", len(ids), err)
	}
	return queued, nil
}

// RequestReplaysWhere asks for a replay of every failed evaluation that
// matches f (Rule, Table; Status defaults to failed) and can be replayed,
// and returns how many it queued.
func (s *Store) RequestReplaysWhere(ctx context.Context, f EvaluationFilter) (int64, error) {
	status := f.Status
	if status == "" {
		status = EvaluationFailed
	}
	if status == EvaluationReplaying {
		return 0, fmt.Errorf("failed evaluations being replayed cannot be asked for again")
	}
	tag, err := s.pool.Exec(ctx, s.sql(`UPDATE {s}.failed_evaluations
		SET status = 'replay_requested', replay_requested_at = now(), claim = '', claimed_until = NULL, updated_at = now()
		WHERE status = $1 AND ($2 = '' OR rule = $2) AND ($3 = '' OR table_name = $3) AND replay IS NOT NULL`),
		status, f.Rule, f.Table)
	if err != nil {
		return 0, fmt.Errorf("requesting replays: %w", err)
	}
	return tag.RowsAffected(), nil
}

// ReplayClaim is a failed evaluation claimed for a replay.
type ReplayClaim struct {
	ID     int64
	Rule   string
	Replay []byte // what the failure kept (event.DecodeReplay)
}

// ClaimReplays claims up to n requested replays for lease under token
// (unique to the caller), oldest first, skipping those another instance
// holds; replays whose lease ran out (their instance died) are claimed
// again.
func (s *Store) ClaimReplays(ctx context.Context, token string, n int, lease time.Duration) ([]ReplayClaim, error) {
	rows, err := s.pool.Query(ctx, s.sql(`UPDATE {s}.failed_evaluations fe
		SET status = 'replaying', claim = $1, claimed_until = now() + $3 * interval '1 millisecond', updated_at = now()
		FROM (SELECT id FROM {s}.failed_evaluations
			WHERE status = 'replay_requested' OR (status = 'replaying' AND claimed_until < now())
			ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED) due
		WHERE fe.id = due.id
		RETURNING fe.id, fe.rule, fe.replay`), token, n, lease.Milliseconds())
	if err != nil {
		return nil, fmt.Errorf("claiming replays: %w", err)
	}
	cs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ReplayClaim, error) {
		var c ReplayClaim
		var replay string
		err := r.Scan(&c.ID, &c.Rule, &replay)
		c.Replay = []byte(replay)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("claiming replays: %w", err)
	}
	return cs, nil
}

// ReplayOutcome is how one claimed replay ended: Events is how many events
// it dispatched; Error, when set, is why it could not be replayed.
type ReplayOutcome struct {
	ID     int64
	Events int
	Error  string
}

// FinishReplays records the outcomes of replays claimed under token: each
// is replayed, or failed again with Error. A replay failed again meanwhile
// by its own re-evaluation (RecordFailures), or claimed by another
// instance after its lease ran out, is left as it is.
func (s *Store) FinishReplays(ctx context.Context, token string, outs []ReplayOutcome) error {
	if len(outs) == 0 {
		return nil
	}
	ids, events, errs := make([]int64, len(outs)), make([]int32, len(outs)), make([]string, len(outs))
	for i, o := range outs {
		ids[i], events[i], errs[i] = o.ID, int32(o.Events), o.Error
	}
	_, err := s.pool.Exec(ctx, s.sql(`UPDATE {s}.failed_evaluations fe SET
			status = CASE WHEN o.error = '' THEN 'replayed' ELSE 'failed' END,
			error = CASE WHEN o.error = '' THEN fe.error ELSE o.error END,
			replay_events = o.events, replayed_at = now(), replays = fe.replays + 1,
			claim = '', claimed_until = NULL, updated_at = now()
		FROM unnest($2::bigint[], $3::int[], $4::text[]) AS o(id, events, error)
		WHERE fe.id = o.id AND fe.status = 'replaying' AND fe.claim = $1`), token, ids, events, errs)
	if err != nil {
		return fmt.Errorf("recording %d replays: %w", len(outs), err)
	}
	return nil
}

// ReleaseReplays hands replays claimed under token back, still requested,
// for this or another instance to claim (at shutdown).
func (s *Store) ReleaseReplays(ctx context.Context, token string, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := s.pool.Exec(ctx, s.sql(`UPDATE {s}.failed_evaluations
		SET status = 'replay_requested', claim = '', claimed_until = NULL, updated_at = now()
		WHERE id = ANY($2) AND status = 'replaying' AND claim = $1`), token, ids)
	if err != nil {
		return fmt.Errorf("releasing %d replays: %w", len(ids), err)
	}
	return nil
}
