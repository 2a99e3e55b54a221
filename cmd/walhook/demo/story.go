package demo

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walhook/walhook/internal/config"
)

// step is one part of the story: plain SQL an application would run, and
// the events config.example.hcl's rules make of it.
type step struct {
	title  string
	sql    string
	events []string // event types expected, one per event
}

// story is what the demo plays: a small CRM's day.
var story = []step{
	{
		title: "Two contacts sign up",
		sql: `INSERT INTO contacts (organization_id, first_name, last_name, email)
VALUES (1, 'Ada', 'Lovelace', 'ada@example.com'), (1, 'Grace', 'Hopper', 'grace@example.com');`,
		events: []string{"contact.created", "contact.created"},
	},
	{
		title:  "Ada adds her phone number",
		sql:    `UPDATE contacts SET phone = '+44 20 7946 0958', updated_at = now() WHERE email = 'ada@example.com';`,
		events: []string{"contact.updated"},
	},
	{
		title: "An update that changes nothing: contact.updated's `when = length(changed) > 0` skips it",
		sql:   `UPDATE contacts SET first_name = first_name WHERE email = 'grace@example.com';`,
	},
	{
		title: "A deal is opened for Ada (no rule watches deal inserts: no event)",
		sql: `INSERT INTO deals (organization_id, contact_id, title, amount)
SELECT 1, id, 'Analytical Engine licence', 12000 FROM contacts WHERE email = 'ada@example.com';`,
	},
	{
		title:  "The deal moves to qualified (the crm endpoint will answer 500 twice, then recover)",
		sql:    `UPDATE deals SET stage = 'qualified' WHERE title = 'Analytical Engine licence';`,
		events: []string{"deal.stage.changed"},
	},
	{
		title:  "…then to proposal",
		sql:    `UPDATE deals SET stage = 'proposal', amount = 15000 WHERE title = 'Analytical Engine licence';`,
		events: []string{"deal.stage.changed"},
	},
	{
		title:  "The deal is won and closed: one UPDATE, two events",
		sql:    `UPDATE deals SET stage = 'won', closed_at = now() WHERE title = 'Analytical Engine licence';`,
		events: []string{"deal.stage.changed", "deal.closed"},
	},
	{
		title: "An invoice is issued (no event) and paid",
		sql: `INSERT INTO invoices (deal_id, amount) SELECT id, 15000 FROM deals WHERE title = 'Analytical Engine licence';
UPDATE invoices SET status = 'paid', paid_at = now() WHERE status = 'open';`,
		events: []string{"invoice.paid"},
	},
}

// stepTimeout bounds the wait for one step's deliveries; the failing
// endpoint's retries (1s, then 2s) fit well within it.
const stepTimeout = 20 * time.Second

// expected counts the deliveries events make: one per subscribed endpoint.
func expected(cfg *config.Config, events []string) int {
	n := 0
	for _, ev := range events {
		for _, ep := range cfg.Endpoints {
			if ep.Matches(ev) {
				n++
			}
		}
	}
	return n
}

// play runs the story against the database at url, waiting after each
// step until its deliveries were accepted.
func play(ctx context.Context, url string, cfg *config.Config, p *printer, t *tally) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("connecting to play the story: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	want := 0
	for _, s := range story {
		p.step(s.title, s.sql)
		if _, err := conn.Exec(ctx, s.sql); err != nil {
			return fmt.Errorf("story step %q: %w", s.title, err)
		}
		want += expected(cfg, s.events)
		if !t.waitAccepted(ctx, want, stepTimeout) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			p.printf("    (still waiting for deliveries after %s; going on)\n", stepTimeout)
		}
	}
	return nil
}

// StorySQL returns the SQL of each step of the story, in order
// (testenv/story.sql plays the same story under docker compose).
func StorySQL() []string {
	out := make([]string, len(story))
	for i, s := range story {
		out[i] = s.sql
	}
	return out
}
