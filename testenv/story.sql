-- The demo's story (cmd/walhook/demo/story.go), played by the compose file's
-- "story" service once walhook holds its replication slot. A test checks that
-- every statement of the demo's story is here.
\set ON_ERROR_STOP on
\echo 'story: waiting for walhook to hold the slot'
DO $$
BEGIN
  WHILE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = 'walhook' AND active) LOOP
    PERFORM pg_sleep(0.2);
  END LOOP;
END $$;

\echo 'story: Two contacts sign up'
INSERT INTO contacts (organization_id, first_name, last_name, email)
VALUES (1, 'Ada', 'Lovelace', 'ada@example.com'), (1, 'Grace', 'Hopper', 'grace@example.com');
SELECT pg_sleep(1);

\echo 'story: Ada adds her phone number'
UPDATE contacts SET phone = '+44 20 7946 0958', updated_at = now() WHERE email = 'ada@example.com';
SELECT pg_sleep(1);

\echo 'story: An update that changes nothing (no event)'
UPDATE contacts SET first_name = first_name WHERE email = 'grace@example.com';

\echo 'story: A deal is opened for Ada (no event)'
INSERT INTO deals (organization_id, contact_id, title, amount)
SELECT 1, id, 'Analytical Engine licence', 12000 FROM contacts WHERE email = 'ada@example.com';

\echo 'story: The deal moves to qualified'
UPDATE deals SET stage = 'qualified' WHERE title = 'Analytical Engine licence';
SELECT pg_sleep(1);

\echo 'story: ...then to proposal'
UPDATE deals SET stage = 'proposal', amount = 15000 WHERE title = 'Analytical Engine licence';
SELECT pg_sleep(1);

\echo 'story: The deal is won and closed: one UPDATE, two events'
UPDATE deals SET stage = 'won', closed_at = now() WHERE title = 'Analytical Engine licence';
SELECT pg_sleep(1);

\echo 'story: An invoice is issued (no event) and paid'
INSERT INTO invoices (deal_id, amount) SELECT id, 15000 FROM deals WHERE title = 'Analytical Engine licence';
UPDATE invoices SET status = 'paid', paid_at = now() WHERE status = 'open';

\echo 'story: done. Try your own changes: docker compose -f testenv/docker-compose.yml exec postgres psql -U walhook crm'
