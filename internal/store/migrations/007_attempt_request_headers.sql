-- The headers an attempt was sent with (values of config endpoints' own
-- headers masked); NULL for attempts logged before this migration.
ALTER TABLE {{.schema}}.attempts ADD COLUMN request_headers jsonb;
