-- Pruning the delivery log by age (state.retention).
CREATE INDEX deliveries_delivered_age ON {{.schema}}.deliveries (updated_at) WHERE status = 'delivered';
CREATE INDEX failed_evaluations_age ON {{.schema}}.failed_evaluations (created_at);
