package main

import "fmt"

// table is the table a scenario's rows go to (-table): its DDL, how a
// backlog and a live row are inserted, and the event its inserts become.
type table struct {
	name  string
	event string
	// create makes the table (empty: it is in the sample schema).
	create string
	// backlog inserts rows $1 to $2 of a generate_series g.
	backlog string
	// live inserts one row numbered $1.
	live string
}

var tables = map[string]table{
	"contacts": {
		name:  "contacts",
		event: "contact.created",
		backlog: `INSERT INTO contacts (organization_id, first_name, email)
			SELECT g % 10, 'name' || g, 'p' || g || '@example.com' FROM generate_series($1::int, $2::int) g`,
		live: `INSERT INTO contacts (organization_id, first_name) VALUES ($1::int % 10, 'x')`,
	},
	// wide has 13 columns of the common types; a row sets text, numeric,
	// jsonb and a timestamptz (and its key) and leaves the rest null, as
	// in the comparison of issue 22.
	"wide": {
		name:  "wide",
		event: "wide.created",
		create: `CREATE TABLE wide (
			id         bigserial PRIMARY KEY,
			name       text NOT NULL,
			amount     numeric(12,2),
			attrs      jsonb,
			created_at timestamptz NOT NULL,
			due        date,
			tags       text[],
			blob       bytea,
			ref        uuid,
			active     boolean,
			note       text,
			score      double precision,
			updated_at timestamptz
		)`,
		backlog: `INSERT INTO wide (name, amount, attrs, created_at)
			SELECT 'customer ' || g, g * 0.25, jsonb_build_object('plan', 'pro', 'seats', g % 50, 'source', 'import'), now()
			FROM generate_series($1::int, $2::int) g`,
		live: `INSERT INTO wide (name, amount, attrs, created_at)
			VALUES ('customer ' || $1::int, $1::int * 0.25, jsonb_build_object('plan', 'pro', 'seats', $1::int % 50), now())`,
	},
}

// tableNamed returns the -table named name.
func tableNamed(name string) (table, error) {
	t, ok := tables[name]
	if !ok {
		return table{}, fmt.Errorf("unknown table %q (want contacts or wide)", name)
	}
	return t, nil
}
