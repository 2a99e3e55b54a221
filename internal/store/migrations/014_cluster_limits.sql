-- Limits one instance learned of an endpoint, shared with every instance
-- sending to it (docs/scaling.md, "Limits across the cluster"). A 429 or 503
-- with Retry-After pauses the endpoint until paused_until: claims leave its
-- deliveries alone until then, and every instance's gate waits it out.
-- cluster_limit and cluster_rate are the adaptive concurrency limit and the
-- rate learned from 429s that limited_by published at limited_at, scaled to
-- the whole cluster (0: none); the others follow their share of them.
ALTER TABLE {{.schema}}.endpoint_health
    ADD COLUMN paused_until  timestamptz,
    ADD COLUMN paused_by     text NOT NULL DEFAULT '',
    ADD COLUMN cluster_limit integer NOT NULL DEFAULT 0,
    ADD COLUMN cluster_rate  double precision NOT NULL DEFAULT 0,
    ADD COLUMN limited_by    text NOT NULL DEFAULT '',
    ADD COLUMN limited_at    timestamptz;
-- Claims read the paused endpoints once per statement.
CREATE INDEX endpoint_health_paused ON {{.schema}}.endpoint_health (paused_until) WHERE paused_until IS NOT NULL;
