# walhook example configuration: the reference for the config language.
# `walhook validate -c config.example.hcl` checks it (set DATABASE_URL,
# WALHOOK_ADMIN_TOKEN, CRM_WEBHOOK_SECRET and LEGACY_SECRET first); the full
# reference is docs/config.md.
#
# Durations are Go durations plus "d" for days: "500ms", "15s", "5m", "2h", "5d", "1d12h".
# env(name) reads an environment variable (an error if unset); env(name, default)
# falls back to default.

source "postgres" {
  url         = env("DATABASE_URL")      # libpq URL or key=value DSN
  slot        = "walhook"                # replication slot, created if missing
  publication = "walhook"                # kept equal to the tables the events use
  # mode = "logical"                     # or "outbox": poll an outbox table instead
  # standby_retry = "1s"                 # how often a standby tries the slot another instance holds
}

state {                                   # optional: where retry state lives
  url    = env("WALHOOK_STATE_URL", "")   # empty: the source database
  schema = "walhook"
  # retention = "7d"                      # how long delivered deliveries stay in the log
}

admin {                                   # optional: API, /metrics, /healthz, /readyz
  listen = "127.0.0.1:8080"
  token  = env("WALHOOK_ADMIN_TOKEN")     # bearer token for the admin API
  # Behind a TLS-terminating reverse proxy (docs/console.md):
  # public_url      = "https://hooks.example.com"
  # trusted_proxies = ["10.0.0.0/8"]      # X-Forwarded-* believed from these only
  # Or HTTPS on the listener itself (files re-read when they change):
  # tls_cert = "/etc/walhook/tls/fullchain.pem"
  # tls_key  = "/etc/walhook/tls/privkey.pem"
}

# delivery {                              # optional: process-wide delivery settings
#   max_in_flight    = 10000              # deliveries held in memory; beyond: retry store
#   log_attempts     = "failures"         # or "all": also log successful first attempts
#   retry_workers    = 64                 # retries in flight at once
#   share            = "overflow"         # or "all": every instance sends (docs/scaling.md)
#   shutdown_timeout = "30s"
#   ca_file          = "/etc/walhook/ca.pem" # trust this CA for HTTPS endpoints too
#   http2            = false              # true: offer HTTPS endpoints HTTP/2 too (fewer connections, more CPU)
# }

# An event block is a rule: which row changes become the named event.
# Its expressions see:
#   new, old  objects of column values (old is null on insert, new on delete)
#   op        "insert" | "update" | "delete" | "truncate"
#   table     "schema.table"
#   tx        { id, lsn, commit_time }
#   changed   names of the columns whose values differ (update on a table with
#             REPLICA IDENTITY FULL; null otherwise)
# Unchanged TOASTed columns (large values an update did not touch) are absent
# from new: read them with try(new.col, null).

event "contact.created" {
  description = "A contact was added"
  table = "contacts"                      # "schema.table"; schema defaults to public
  on    = ["insert"]                      # insert | update | delete | truncate
  # data defaults to new (old on delete); key to the primary key; no tenant.
}

event "contact.updated" {
  description = "A contact's details changed"
  table = "contacts"
  on    = ["update"]
  when  = length(changed) > 0             # skip updates that changed nothing
}

event "deal.stage.changed" {
  description = "A deal moved to another pipeline stage"
  table  = "deals"
  on     = ["update"]
  when   = old.stage != new.stage
  key    = new.id                         # ordering and idempotency key; default: primary key
  tenant = new.organization_id            # scopes endpoints registered through the API
  data   = merge(new, { previous_stage = old.stage })
}

event "deal.closed" {
  description = "A deal was closed"
  table = "deals"
  on    = ["update"]
  when  = old.closed_at == null && new.closed_at != null
}

event "invoice.paid" {
  description = "An invoice was paid"
  table = "invoices"
  on    = ["update"]
  when  = old.status != "paid" && new.status == "paid"
}

# An endpoint receives every event its filter matches, signed, retried until
# it answers 2xx.
endpoint "crm" {
  url     = "https://crm.example.com/webhooks"
  events  = ["contact.*", "deal.stage.changed"]   # exact names or globs
  secret  = env("CRM_WEBHOOK_SECRET")              # whsec_...; `secrets = [..]` during rotation
  signing = "standard-webhooks"                    # | "hmac-sha256" | "stripe" | "github"
  headers = { "X-Source" = "walhook" }
  timeout = "15s"
  ordering = "key"                                 # "none" (default) | "key": one at a time per key
  retry {
    schedule = ["5s", "5m", "30m", "2h", "5h", "10h", "14h", "20h", "24h"]
  }
  disable_after = "5d"                             # failing continuously this long: disabled
  # concurrency = 256                              # most requests in flight; walhook adapts below it
  # batch {                                        # many events per request: {"type": "batch", "data": [...]}
  #   max_events = 100
  #   max_bytes  = "1MB"
  #   max_wait   = "50ms"                          # how long a request waits for more events
  # }
}

endpoint "legacy" {
  url     = "http://10.0.0.7:3000/webhook"
  events  = ["*"]
  secret  = env("LEGACY_SECRET")
  signing = "hmac-sha256"                          # hex HMAC of the body in X-Webhook-Signature
  rate_limit = "3000/m"                            # at most 3000 requests a minute ("500/s", "10/h"), retries included
  # body reshapes the payload; it sees event (id, type, timestamp, data, key, tenant).
  # Without it: {"id", "type", "timestamp", "data"}.
  body    = { event = event.type, timestamp = event.timestamp, data = event.data }
}
