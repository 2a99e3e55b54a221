-- Batches (docs/architecture.md, "Batches"). A delivery that failed as part
-- of a batch request remembers the batch's id (its webhook-id), so that its
-- retries go out together with the rest of the batch under the same id.
ALTER TABLE {{.schema}}.deliveries ADD COLUMN batch_id text;

CREATE INDEX deliveries_batch ON {{.schema}}.deliveries (batch_id) WHERE batch_id IS NOT NULL AND status = 'pending';

-- An API webhook that takes batches: {"max_events", "max_bytes",
-- "max_wait_ns"} as resolved when it was registered; NULL: one event per
-- request.
ALTER TABLE {{.schema}}.webhooks ADD COLUMN batch jsonb;
