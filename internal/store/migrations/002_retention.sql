-- Pruning the delivery log by age (state.retention), and listing it across endpoints.
CREATE INDEX deliveries_delivered_age ON {{.schema}}.deliveries (updated_at) WHERE status = 'delivered';
CREATE INDEX failed_evaluations_age ON {{.schema}}.failed_evaluations (created_at);
-- The delivery log across endpoints (GET without an endpoint, the CLI), newest first.
CREATE INDEX deliveries_log ON {{.schema}}.deliveries (created_at DESC, id DESC);
