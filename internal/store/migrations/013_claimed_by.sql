-- Which instance holds a pending delivery's lease (docs/architecture.md,
-- "Membership"): ClaimDue sets it, a completion or a postpone clears it.
-- When an instance stops heartbeating, an alive one makes the deliveries
-- it had leased due at once rather than wait for their leases to end.
ALTER TABLE {{.schema}}.deliveries ADD COLUMN claimed_by text;
CREATE INDEX deliveries_claimed_by ON {{.schema}}.deliveries (claimed_by) WHERE claimed_by IS NOT NULL;
