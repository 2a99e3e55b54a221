-- A webhook's rate_limit ("500/s", "3000/m", "10/h"); empty means none.
ALTER TABLE {{.schema}}.webhooks ADD COLUMN rate_limit text NOT NULL DEFAULT '';
