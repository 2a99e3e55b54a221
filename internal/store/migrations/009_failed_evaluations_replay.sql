-- Failed evaluations can be listed and replayed after the rule or the
-- endpoint's body is fixed (docs/operations.md, "Failed evaluations").
-- replay holds the change as the rule saw it (or the event whose body
-- failed) as JSON with values tagged by type, kept as text (written for
-- every failure, read only by a replay); NULL for failures recorded before
-- this migration, which cannot be replayed. A replay request is
-- claimed by one running walhook (claim, claimed_until) with SKIP LOCKED.
ALTER TABLE {{.schema}}.failed_evaluations
	ADD COLUMN end_lsn             bigint NOT NULL DEFAULT 0,
	ADD COLUMN old_row             jsonb,
	ADD COLUMN event_type          text NOT NULL DEFAULT '',
	ADD COLUMN event_id            text NOT NULL DEFAULT '',
	ADD COLUMN endpoint_id         text NOT NULL DEFAULT '',
	ADD COLUMN replay              text,
	ADD COLUMN status              text NOT NULL DEFAULT 'failed'
		CHECK (status IN ('failed', 'replay_requested', 'replaying', 'replayed')),
	ADD COLUMN replays             integer NOT NULL DEFAULT 0,
	ADD COLUMN replay_events       integer,
	ADD COLUMN replay_requested_at timestamptz,
	ADD COLUMN replayed_at         timestamptz,
	ADD COLUMN claim               text NOT NULL DEFAULT '',
	ADD COLUMN claimed_until       timestamptz,
	ADD COLUMN updated_at          timestamptz NOT NULL DEFAULT now();

-- Replay requests waiting for a running walhook, oldest first.
CREATE INDEX failed_evaluations_replay ON {{.schema}}.failed_evaluations (id)
	WHERE status IN ('replay_requested', 'replaying');
-- Listing one rule's failures, newest first.
CREATE INDEX failed_evaluations_rule ON {{.schema}}.failed_evaluations (rule, id DESC);
