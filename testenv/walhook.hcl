# The config `docker compose -f testenv/docker-compose.yml up` runs: the
# event rules of config.example.hcl (a test keeps them identical), with its
# endpoints pointed at the compose file's receivers. See config.example.hcl
# for the annotated reference.

source "postgres" {
  url         = env("DATABASE_URL")
  slot        = "walhook"
  publication = "walhook"
}

admin {
  listen = "0.0.0.0:8080"                # published on 127.0.0.1:8080 by the compose file
  token  = env("WALHOOK_ADMIN_TOKEN")
}

event "contact.created" {
  description = "A contact was added"
  table = "contacts"
  on    = ["insert"]
}

event "contact.updated" {
  description = "A contact's details changed"
  table = "contacts"
  on    = ["update"]
  when  = length(changed) > 0
}

event "deal.stage.changed" {
  description = "A deal moved to another pipeline stage"
  table  = "deals"
  on     = ["update"]
  when   = old.stage != new.stage
  key    = new.id
  tenant = new.organization_id
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

endpoint "crm" {
  url      = "http://receiver-crm:9000/webhooks"          # the receiver-crm service
  events   = ["contact.*", "deal.stage.changed"]
  secret   = env("CRM_WEBHOOK_SECRET")
  signing  = "standard-webhooks"
  headers  = { "X-Source" = "walhook" }
  timeout  = "15s"
  ordering = "key"
  retry {
    schedule = ["5s", "5m", "30m", "2h", "5h", "10h", "14h", "20h", "24h"]
  }
  disable_after = "5d"
}

endpoint "legacy" {
  url     = "http://receiver-legacy:9000/webhook"         # the receiver-legacy service
  events  = ["*"]
  secret  = env("LEGACY_SECRET")
  signing = "hmac-sha256"
  body    = { event = event.type, timestamp = event.timestamp, data = event.data }
}
