package cdc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// querier is a connection or a transaction.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// syncPublication creates publication name for tables ("schema.table",
// sorted), or sets its tables to them; publish, when not empty, is the
// operations it must publish and no more.
func syncPublication(ctx context.Context, q querier, name, publish string, tables []string) error {
	idents := make([]string, len(tables))
	for i, t := range tables {
		schema, table, _ := strings.Cut(t, ".")
		idents[i] = pgx.Identifier{schema, table}.Sanitize()
	}
	list := strings.Join(idents, ", ")
	pub := pgx.Identifier{name}.Sanitize()
	with := ""
	if publish != "" {
		with = " WITH (publish = '" + publish + "')"
	}

	var allTables, insert, update, del, truncate bool
	err := q.QueryRow(ctx, `SELECT puballtables, pubinsert, pubupdate, pubdelete, pubtruncate FROM pg_publication WHERE pubname = $1`,
		name).Scan(&allTables, &insert, &update, &del, &truncate)
	if errors.Is(err, pgx.ErrNoRows) {
		sql := "CREATE PUBLICATION " + pub
		if len(tables) > 0 {
			sql += " FOR TABLE " + list
		}
		if _, err := q.Exec(ctx, sql+with); err != nil {
			return fmt.Errorf("creating publication %s for %s: %w", name, list, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("looking up publication %s: %w", name, err)
	}
	if allTables {
		return fmt.Errorf("publication %s is FOR ALL TABLES, but walhook keeps its publication to the configured tables: drop it or choose another publication name", name)
	}
	if publish != "" && (update || del || !insert || !truncate) {
		if _, err := q.Exec(ctx, "ALTER PUBLICATION "+pub+" SET (publish = '"+publish+"')"); err != nil {
			return fmt.Errorf("setting publication %s to publish %s only: %w", name, publish, err)
		}
	}
	have, err := publicationMembers(ctx, q, name)
	if err != nil {
		return err
	}
	if slices.Equal(have, tables) {
		return nil
	}
	if len(tables) == 0 {
		drop := make([]string, len(have))
		for i, t := range have {
			schema, table, _ := strings.Cut(t, ".")
			drop[i] = pgx.Identifier{schema, table}.Sanitize()
		}
		if _, err := q.Exec(ctx, "ALTER PUBLICATION "+pub+" DROP TABLE "+strings.Join(drop, ", ")); err != nil {
			return fmt.Errorf("taking every table out of publication %s: %w", name, err)
		}
		return nil
	}
	if _, err := q.Exec(ctx, "ALTER PUBLICATION "+pub+" SET TABLE "+list); err != nil {
		return fmt.Errorf("setting the tables of publication %s to %s: %w", name, list, err)
	}
	return nil
}

// releaseUnsafe takes out of publication the tables of problems it holds
// that make Postgres refuse the application's UPDATE and DELETE.
func releaseUnsafe(ctx context.Context, conn *pgx.Conn, publication string, problems []TableProblem) error {
	var idents []string
	for _, p := range problems {
		if p.Kind == NoReplicaIdentity && p.InPublication {
			schema, table, _ := strings.Cut(p.Table, ".")
			idents = append(idents, pgx.Identifier{schema, table}.Sanitize())
		}
	}
	if len(idents) == 0 {
		return nil
	}
	list := strings.Join(idents, ", ")
	if _, err := conn.Exec(ctx, "ALTER PUBLICATION "+pgx.Identifier{publication}.Sanitize()+" DROP TABLE "+list); err != nil {
		return fmt.Errorf("taking %s, which has no replica identity, out of publication %s: %w", list, publication, err)
	}
	return nil
}

// stampInserts records on the inserts-only publication a position after
// its creation, unless one is recorded (see usableFromComment).
func stampInserts(ctx context.Context, conn *pgx.Conn, inserts string) error {
	var comment *string
	if err := conn.QueryRow(ctx, `SELECT obj_description(oid, 'pg_publication') FROM pg_publication WHERE pubname = $1`, inserts).Scan(&comment); err != nil {
		return fmt.Errorf("reading the comment of publication %s: %w", inserts, err)
	}
	if comment != nil && usableFromComment.MatchString(*comment) {
		return nil
	}
	var lsn string
	if err := conn.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&lsn); err != nil {
		return fmt.Errorf("reading the WAL position: %w", err)
	}
	text := "walhook: publishes only the inserts and truncates of tables without a replica identity; usable from " + lsn
	_, err := conn.Exec(ctx, "COMMENT ON PUBLICATION "+pgx.Identifier{inserts}.Sanitize()+" IS '"+text+"'")
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42501" {
		return nil // another role owns it: its owner records the position (docs/operations.md)
	}
	if err != nil {
		return fmt.Errorf("recording the position of publication %s: %w", inserts, err)
	}
	return nil
}
