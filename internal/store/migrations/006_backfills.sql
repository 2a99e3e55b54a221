-- Backfills: rows already in a table sent as events (op "read"), read in
-- primary key chunks. last_key is the text form of the last key of the last
-- chunk whose events are settled; a restart resumes after it.
CREATE TABLE {{.schema}}.backfills (
    id          text PRIMARY KEY,
    table_name  text NOT NULL,
    where_sql   text NOT NULL DEFAULT '',
    event       text NOT NULL DEFAULT '',
    endpoint_id text NOT NULL DEFAULT '',
    id_seed     text NOT NULL,
    rate        integer NOT NULL DEFAULT 0,
    chunk_size  integer NOT NULL,
    status      text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'paused', 'completed', 'cancelled', 'failed')),
    rows_total  bigint,
    total_exact boolean NOT NULL DEFAULT false,
    rows_done   bigint NOT NULL DEFAULT 0,
    rows_sent   bigint NOT NULL DEFAULT 0,
    last_key    text[],
    last_error  text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    started_at  timestamptz,
    finished_at timestamptz
);
-- The runner looks for the oldest backfill to run.
CREATE INDEX backfills_runnable ON {{.schema}}.backfills (created_at) WHERE status IN ('pending', 'running');
