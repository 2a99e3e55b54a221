-- The sample CRM schema used by walhook's tests, the demo and the docs.
CREATE TABLE IF NOT EXISTS contacts (
    id              bigserial PRIMARY KEY,
    organization_id bigint      NOT NULL,
    first_name      text        NOT NULL,
    last_name       text,
    email           text,
    phone           text,
    assigned_to     bigint,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS deals (
    id              bigserial PRIMARY KEY,
    organization_id bigint        NOT NULL,
    contact_id      bigint        REFERENCES contacts (id),
    title           text          NOT NULL,
    amount          numeric(12,2) NOT NULL DEFAULT 0,
    stage           text          NOT NULL DEFAULT 'lead',
    assigned_to     bigint,
    closed_at       timestamptz,
    metadata        jsonb         NOT NULL DEFAULT '{}'
);

CREATE TABLE IF NOT EXISTS invoices (
    id       bigserial PRIMARY KEY,
    deal_id  bigint        REFERENCES deals (id),
    amount   numeric(12,2) NOT NULL,
    status   text          NOT NULL DEFAULT 'open',
    paid_at  timestamptz
);

-- walhook's rules read old.stage and old.closed_at, and compute `changed`:
-- both need the whole old row, which Postgres sends only with FULL.
ALTER TABLE contacts REPLICA IDENTITY FULL;
ALTER TABLE deals    REPLICA IDENTITY FULL;
ALTER TABLE invoices REPLICA IDENTITY FULL;
