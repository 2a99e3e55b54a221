// Package store is walhook's state in Postgres: the retry store
// (deliveries), the attempts log, endpoint health, API-registered webhooks
// and failed rule evaluations, all in one schema ("walhook" by default).
// It owns every SQL statement of that schema; callers see typed rows.
//
// Open applies the versioned migrations in migrations/ (jackc/tern, version
// table <schema>.schema_version) under a per-schema advisory lock, so
// several processes may start at once. The schema name is always quoted
// as an identifier, so any name Postgres accepts works.
//
// # Claiming and leases
//
// A pending delivery is due when next_attempt_at <= now(). ClaimDue takes
// due rows with FOR UPDATE SKIP LOCKED, so concurrent claimers (goroutines
// or processes) never get the same row, and in the same statement moves
// next_attempt_at to now()+lease. The lease is the only lock that outlives
// the statement: a worker that dies leaves its rows due again when the
// lease ends, so a lease must be longer than an attempt can take. A worker
// that outlives its lease may race another with the same row; delivery is
// at least once, and Complete never moves a delivered row back.
//
// # Ordering
//
// seq (a sequence) gives every stored delivery its place; Persist assigns
// it in slice order. Of the pending deliveries of one endpoint and non-empty
// key, only the one with the lowest seq is claimable, however due the later
// ones are, so a key's deliveries go out in commit order across claims,
// workers and processes. Retry and Recover keep a delivery's seq, so a
// replayed delivery goes before the later pending ones of its key.
//
// So that a long backlog behind a failing head does not make every claim
// rescan it, ClaimDue parks the held-back rows it meets (moves their next
// attempt to their head's, at most 2 seconds ahead), and Complete makes the
// next row of a key due as soon as its head leaves pending.
//
// # Lock order
//
// Statements that lock several rows lock deliveries by ascending seq, then
// endpoint health; ClaimDue never waits (SKIP LOCKED). This keeps
// concurrent Complete, FailPending, Recover and DeleteWebhook free of
// deadlocks.
//
// # Idempotency
//
// Delivery ids are deterministic (DeliveryID), and Persist and LogAttempts
// insert with ON CONFLICT DO NOTHING: replaying a batch after a crash
// neither duplicates nor resets a row. Failed evaluations are unique on
// (commit LSN, position, rule).
//
// # Webhook changes
//
// A statement trigger on the webhooks table bumps meta.webhooks_version
// (WebhooksVersion) and notifies the channel "<schema>_webhooks"
// (WebhooksChannel) with the new version, so instances can poll the
// version cheaply or get the change at once with Listen.
//
// # Slot handover
//
// An instance that closed its replication connection says so on the
// channel "<schema>_slots" (SlotsChannel, NotifySlotReleased; the payload
// is the slot's name), so that standbys listening (Listen) try the slot at
// once.
package store
