-- Membership: every running walhook registers itself here and renews its
-- heartbeat every heartbeat_every (docs/architecture.md, "Membership").
-- Whether an instance is alive is decided with the database's clock only
-- (heartbeat_at against now()), so the hosts' clocks do not matter. role
-- is "leader" (it holds the replication slot), "standby" (it waits for the
-- slot and works retries) or "poller" (outbox mode: every instance polls).
-- What an instance is delivering is what it last reported: attempts in
-- flight, retries among them, attempts and failed attempts per second
-- over its last heartbeat interval.
CREATE TABLE {{.schema}}.instances (
    id                  text PRIMARY KEY,
    host                text NOT NULL,
    pid                 integer NOT NULL,
    version             text NOT NULL,
    listen              text NOT NULL DEFAULT '',
    role                text NOT NULL CHECK (role IN ('leader', 'standby', 'poller')),
    heartbeat_every     interval NOT NULL,
    in_flight           integer NOT NULL DEFAULT 0,
    retries_in_flight   integer NOT NULL DEFAULT 0,
    attempts_per_second double precision NOT NULL DEFAULT 0,
    failures_per_second double precision NOT NULL DEFAULT 0,
    started_at          timestamptz NOT NULL DEFAULT now(),
    heartbeat_at        timestamptz NOT NULL DEFAULT now()
);
