package outbox

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/walhook/walhook/testenv"
)

// TestCheckTable checks outbox tables of several shapes in a real
// database: what CheckTable reports, and that applying the SQL fixes it
// gives leaves a table with no problem left.
func TestCheckTable(t *testing.T) {
	t.Parallel()
	created, err := TableSQL("app.outbox")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		sql      string
		errors   []string // in the problems that are errors, in order
		warnings []string // in the warnings, in order
		fixed    bool     // applying every fix leaves no problem
	}{
		{name: "as walhook outbox init makes it", sql: created},
		{
			name: "wrong column names",
			sql: `CREATE SCHEMA app; CREATE TABLE app.outbox (id bigserial PRIMARY KEY, type text NOT NULL, key text, tenant text,
				data jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`,
			errors: []string{`There is no column event_type (walhook reads event_type from it; type looks like it). Fix: ALTER TABLE "app"."outbox" RENAME COLUMN "type" TO event_type;`,
				`There is no column payload (walhook reads payload from it; data looks like it). Fix: ALTER TABLE "app"."outbox" RENAME COLUMN "data" TO payload;`},
			fixed: true,
		},
		{
			name: "nullable event_type",
			sql: `CREATE SCHEMA app; CREATE TABLE app.outbox (id bigserial PRIMARY KEY, event_type text, key text, tenant text,
				payload jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`,
			warnings: []string{`Column event_type may be NULL: a row without an event type becomes a failed evaluation (kept, visible, replayable), not an event. Fix: ALTER TABLE "app"."outbox" ALTER COLUMN "event_type" SET NOT NULL;`},
			fixed:    true,
		},
		{
			name: "payload of type text",
			sql: `CREATE SCHEMA app; CREATE TABLE app.outbox (id bigserial PRIMARY KEY, event_type varchar(100) NOT NULL, key text, tenant text,
				payload text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`,
		},
		{
			name: "no primary key",
			sql: `CREATE SCHEMA app; CREATE TABLE app.outbox (id bigserial, event_type text NOT NULL, key text, tenant text,
				payload jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`,
			errors: []string{`app.outbox has no primary key on id: walhook orders rows by id and deletes delivered rows by id, so two rows with one id would share an event id and a later one could be deleted undelivered. Fix: ALTER TABLE "app"."outbox" ADD PRIMARY KEY (id);`},
			fixed:  true,
		},
		{
			name: "unique index on id instead of a primary key",
			sql: `CREATE SCHEMA app; CREATE TABLE app.outbox (uid uuid PRIMARY KEY, id bigserial UNIQUE, event_type text NOT NULL, key text, tenant text,
				payload jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`,
		},
		{
			name: "partitioned, id unique with the partition key",
			sql: `CREATE SCHEMA app; CREATE TABLE app.outbox (id bigserial, event_type text NOT NULL, key text, tenant text,
				payload jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (created_at, id)) PARTITION BY RANGE (created_at);
				CREATE TABLE app.outbox_all PARTITION OF app.outbox DEFAULT`,
			warnings: []string{"app.outbox's id is unique only together with created_at (its key is (id, created_at)"},
		},
		{
			name: "wrong types and missing columns",
			sql: `CREATE SCHEMA app; CREATE TABLE app.outbox (id bigserial PRIMARY KEY, event_type text NOT NULL, key bigint,
				payload bytea NOT NULL, created_at timestamp)`,
			errors: []string{
				`Column key is bigint; walhook reads it as text. Fix: ALTER TABLE "app"."outbox" ALTER COLUMN "key" TYPE text USING "key"::text;`,
				`There is no column tenant (it may hold NULL, but walhook reads it). Fix: ALTER TABLE "app"."outbox" ADD COLUMN tenant text;`,
				`Column payload is bytea; walhook reads it as JSON`,
			},
			warnings: []string{"created_at may be NULL", "timestamp without time zone", "created_at has no default"},
		},
		{
			name:   "missing table",
			sql:    `CREATE SCHEMA app`,
			errors: []string{"There is no table app.outbox in the source database. Fix: create it with `walhook outbox init -c <config file>`"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := testenv.NewEmptyDB(t)
			db.Exec(t, tt.sql)
			conn, err := pgx.Connect(ctx, db.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			problems, err := CheckTable(ctx, conn, "app.outbox")
			if err != nil {
				t.Fatal(err)
			}
			var errs, warns []Problem
			for _, p := range problems {
				if p.Warning {
					warns = append(warns, p)
				} else {
					errs = append(errs, p)
				}
			}
			expect := func(kind string, got []Problem, want []string) {
				t.Helper()
				if len(got) != len(want) {
					t.Errorf("%d %s, want %d: %v", len(got), kind, len(want), got)
					return
				}
				for i, w := range want {
					if !strings.Contains(got[i].String(), w) {
						t.Errorf("%s %d = %q, want it to contain %q", kind, i, got[i].String(), w)
					}
				}
			}
			expect("errors", errs, tt.errors)
			expect("warnings", warns, tt.warnings)
			if shape := Errors("app.outbox", problems); (shape != nil) != (len(tt.errors) > 0) {
				t.Errorf("Errors = %v with %d errors", shape, len(tt.errors))
			} else if shape != nil && !strings.Contains(shape.Error(), errs[0].Fix) {
				t.Errorf("the error %q does not give the fix %q", shape, errs[0].Fix)
			}
			if !tt.fixed {
				return
			}
			for _, p := range problems {
				if _, err := conn.Exec(ctx, p.Fix); err != nil {
					t.Fatalf("applying the fix %q: %v", p.Fix, err)
				}
			}
			if after, err := CheckTable(ctx, conn, "app.outbox"); err != nil || len(after) > 0 {
				t.Errorf("after the fixes: %v, %v", after, err)
			}
		})
	}
}
