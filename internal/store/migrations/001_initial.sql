-- The retry store, attempts log, endpoint health, API-registered webhooks
-- and failed rule evaluations. {{.schema}} is the quoted state schema and
-- {{.channel}} the quoted string literal of its NOTIFY channel.

CREATE TABLE {{.schema}}.deliveries (
	id              text PRIMARY KEY,
	event_id        text NOT NULL,
	event_type      text NOT NULL,
	endpoint_id     text NOT NULL,
	key             text NOT NULL DEFAULT '',
	tenant          text NOT NULL DEFAULT '',
	body            bytea NOT NULL,
	event_time      timestamptz NOT NULL,
	commit_lsn      bigint NOT NULL,
	position        integer NOT NULL DEFAULT 0,
	seq             bigserial NOT NULL,
	status          text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
	attempts        integer NOT NULL DEFAULT 0,
	next_attempt_at timestamptz NOT NULL DEFAULT now(),
	last_status     integer NOT NULL DEFAULT 0,
	last_error      text NOT NULL DEFAULT '',
	created_at      timestamptz NOT NULL DEFAULT now(),
	updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Claiming due retries.
CREATE INDEX deliveries_due ON {{.schema}}.deliveries (next_attempt_at) WHERE status = 'pending';
-- Per-key ordering (the pending row of a key first in commit order is its head), HasPending, FailPending.
CREATE INDEX deliveries_pending_key ON {{.schema}}.deliveries (endpoint_id, key, commit_lsn, position, seq) WHERE status = 'pending';
-- Recover and failed counts.
CREATE INDEX deliveries_failed ON {{.schema}}.deliveries (endpoint_id, created_at) WHERE status = 'failed';
-- The delivery log of one endpoint, newest first.
CREATE INDEX deliveries_endpoint_log ON {{.schema}}.deliveries (endpoint_id, created_at DESC, id DESC);

CREATE TABLE {{.schema}}.attempts (
	id           bigserial PRIMARY KEY,
	delivery_id  text NOT NULL,
	event_id     text NOT NULL,
	event_type   text NOT NULL,
	endpoint_id  text NOT NULL,
	number       integer NOT NULL,
	attempted_at timestamptz NOT NULL,
	duration     interval NOT NULL,
	status_code  integer NOT NULL DEFAULT 0,
	error        text NOT NULL DEFAULT '',
	response     text NOT NULL DEFAULT ''
);

CREATE INDEX attempts_delivery ON {{.schema}}.attempts (delivery_id);
CREATE INDEX attempts_attempted_at ON {{.schema}}.attempts (attempted_at);

CREATE TABLE {{.schema}}.endpoint_health (
	endpoint_id          text PRIMARY KEY,
	consecutive_failures integer NOT NULL DEFAULT 0,
	failing_since        timestamptz,
	last_success_at      timestamptz,
	last_failure_at      timestamptz,
	disabled             boolean NOT NULL DEFAULT false,
	disabled_at          timestamptz,
	disabled_reason      text NOT NULL DEFAULT ''
);

CREATE TABLE {{.schema}}.webhooks (
	id          text PRIMARY KEY,
	url         text NOT NULL,
	description text NOT NULL DEFAULT '',
	events      text[] NOT NULL DEFAULT '{}',
	tenant      text NOT NULL DEFAULT '',
	active      boolean NOT NULL DEFAULT true,
	headers     jsonb NOT NULL DEFAULT '{}',
	signing     text NOT NULL DEFAULT '',
	secrets     jsonb NOT NULL DEFAULT '[]',
	created_at  timestamptz NOT NULL DEFAULT now(),
	updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX webhooks_list ON {{.schema}}.webhooks (created_at, id);
CREATE INDEX webhooks_tenant_list ON {{.schema}}.webhooks (tenant, created_at, id);

-- Counters; 'webhooks_version' is bumped by a trigger on every webhook change.
CREATE TABLE {{.schema}}.meta (
	key   text PRIMARY KEY,
	value bigint NOT NULL
);
INSERT INTO {{.schema}}.meta (key, value) VALUES ('webhooks_version', 0);

-- webhooks_changed bumps the version and notifies the channel given as the
-- trigger's argument. It names no schema itself, so an odd schema name
-- cannot break its body.
CREATE FUNCTION {{.schema}}.webhooks_changed() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
	v bigint;
BEGIN
	EXECUTE format('UPDATE %I.meta SET value = value + 1 WHERE key = ''webhooks_version'' RETURNING value', TG_TABLE_SCHEMA) INTO v;
	PERFORM pg_notify(TG_ARGV[0], v::text);
	RETURN NULL;
END
$fn$;

CREATE TRIGGER webhooks_changed AFTER INSERT OR UPDATE OR DELETE ON {{.schema}}.webhooks
	FOR EACH STATEMENT EXECUTE FUNCTION {{.schema}}.webhooks_changed({{.channel}});

CREATE TABLE {{.schema}}.failed_evaluations (
	id         bigserial PRIMARY KEY,
	rule       text NOT NULL,
	table_name text NOT NULL DEFAULT '',
	op         text NOT NULL DEFAULT '',
	xid        bigint NOT NULL DEFAULT 0,
	commit_lsn bigint NOT NULL,
	position   integer NOT NULL,
	error      text NOT NULL,
	row        jsonb,
	created_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (commit_lsn, position, rule)
);
