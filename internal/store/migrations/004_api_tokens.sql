-- Tenant-scoped API tokens: an application hands one to a customer so the
-- console and the admin API show that tenant's webhooks and deliveries
-- only. Only a SHA-256 of the token is kept; the token is shown once.

CREATE TABLE {{.schema}}.api_tokens (
	id           text PRIMARY KEY,
	tenant       text NOT NULL CHECK (tenant <> ''),
	name         text NOT NULL DEFAULT '',
	token_hash   bytea NOT NULL UNIQUE,
	hint         text NOT NULL DEFAULT '',
	created_at   timestamptz NOT NULL DEFAULT now(),
	revoked_at   timestamptz
);

CREATE INDEX api_tokens_tenant ON {{.schema}}.api_tokens (tenant, created_at, id);
-- The delivery log of one tenant, newest first.
CREATE INDEX deliveries_tenant_log ON {{.schema}}.deliveries (tenant, created_at DESC, id DESC) WHERE tenant <> '';
