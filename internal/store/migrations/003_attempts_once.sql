-- An attempt is written once. The dispatcher writes a batch of deliveries,
-- attempts and failed evaluations in one transaction and retries the whole
-- batch when the commit's outcome is unknown; the unique key makes the retry
-- harmless. The attempt's time is part of the key because retry and recover
-- start a delivery's attempt numbers again at 1 while the log keeps every
-- attempt.
DELETE FROM {{.schema}}.attempts a USING {{.schema}}.attempts b
WHERE a.delivery_id = b.delivery_id AND a.number = b.number AND a.attempted_at = b.attempted_at AND a.id > b.id;

CREATE UNIQUE INDEX attempts_once ON {{.schema}}.attempts (delivery_id, number, attempted_at);
-- attempts_once starts with delivery_id: it serves the lookups attempts_delivery served.
DROP INDEX {{.schema}}.attempts_delivery;
