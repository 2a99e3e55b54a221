-- The replication slot walhook owns: the server (system identifier) and
-- database it lives in, and the position walhook last confirmed to it. The
-- position is written before it is confirmed to the server, so a slot whose
-- confirmed position is ahead of it was re-created or moved by someone else
-- (docs/operations.md, "When the slot or publication is lost").
CREATE TABLE {{.schema}}.slots (
    slot_name     text PRIMARY KEY,
    database_name text NOT NULL,
    system_id     text NOT NULL,
    confirmed_lsn pg_lsn NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
