-- The table each configured name stood for when walhook last captured it
-- (its oid), by slot: a table dropped, re-created or renamed while no
-- walhook ran is then noticed at the next start, not silently put back in
-- the publication (docs/operations.md, "Schema changes under the rules").
CREATE TABLE {{.schema}}.captured_tables (
    slot_name  text NOT NULL,
    table_name text NOT NULL,
    table_oid  bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (slot_name, table_name)
);
