package config

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
)

const okSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// base is a valid config the malformed cases add to.
const base = `source "postgres" { url = "postgres://localhost/crm" }
event "item.created" {
  table = "items"
  on    = ["insert"]
}
`

// markedLine is the 1-based line holding "# <-" in src.
func markedLine(t *testing.T, src string) int {
	t.Helper()
	for i, l := range strings.Split(src, "\n") {
		if strings.Contains(l, "# <-") {
			return i + 1
		}
	}
	t.Fatalf("no # <- marker in:\n%s", src)
	return 0
}

func endpoint(body string) string {
	return "endpoint \"e\" {\n  url = \"https://example.com/hook\"\n  events = [\"item.created\"]\n" + body + "\n}\n"
}

func TestMalformed(t *testing.T) {
	t.Parallel()
	short := "whsec_" + base64.StdEncoding.EncodeToString([]byte("12345678"))
	tests := []struct {
		name string
		src  string // the line with "# <-" is where the diagnostic must point
		want string // in the diagnostic's summary or detail
	}{
		{"syntax error", base + "event \"x\" {\n  table = \"t\"\n  on = [\"insert\" \"update\"] # <-\n}\n", "Missing item separator"},
		{"unknown block", base + "metrics { # <-\n}\n", "Unsupported block type"},
		{"unknown attribute", base + "event \"b\" {\n  table = \"t\"\n  on = [\"insert\"]\n  colour = \"red\" # <-\n}\n", "Unsupported argument"},
		{"wrong type", base + "event \"b\" {\n  table = \"t\"\n  on = { insert = true } # <-\n}\n", "list of string required"},
		{"missing source", "# a config without a source # <-\nevent \"b\" {\n  table = \"t\"\n  on = [\"insert\"]\n}\n", "Missing source block"},
		{"missing source url", "source \"postgres\" { # <-\n  slot = \"x\"\n}\n", "The argument \"url\" is required"},
		{"unsupported source", "source \"mysql\" { url = \"x\" } # <-\n", "The only source is \"postgres\""},
		{"invalid slot", "source \"postgres\" {\n  url = \"x\"\n  slot = \"Wal-Hook\" # <-\n}\n", "Invalid slot name"},
		{"outbox mode without outbox", "source \"postgres\" {\n  url = \"x\"\n  mode = \"outbox\" # <-\n}\n", "Missing outbox block"},
		{"bad mode", "source \"postgres\" {\n  url = \"x\"\n  mode = \"trigger\" # <-\n}\n", "Invalid source mode"},
		{"unknown variable in when", base + "event \"b\" {\n  table = \"t\"\n  on = [\"update\"]\n  when = row.x != 1 # <-\n}\n", "There is no variable named \"row\""},
		{"unknown variable in body", base + endpoint("  secret = \""+okSecret+"\"\n  body = { id = new.id } # <-"), "There is no variable named \"new\""},
		{"unknown function", base + "event \"b\" {\n  table = \"t\"\n  on = [\"update\"]\n  when = lowercase(new.x) == \"a\" # <-\n}\n", "There is no function named \"lowercase\""},
		{"function arity", base + "event \"b\" {\n  table = \"t\"\n  on = [\"update\"]\n  when = length() > 0 # <-\n}\n", "Not enough function arguments"},
		{"when not a bool", base + "event \"b\" {\n  table = \"t\"\n  on = [\"update\"]\n  when = { a = 1 } # <-\n}\n", "when must be a bool"},
		{"key not a string", base + "event \"b\" {\n  table = \"t\"\n  on = [\"update\"]\n  key = [new.id] # <-\n}\n", "key must be a string or number"},
		{"public_url with a path", base + "admin {\n  token = \"0123456789abcdef\"\n  public_url = \"https://hooks.example.com/walhook\" # <-\n}\n", "is an origin only"},
		{"public_url scheme", base + "admin {\n  token = \"0123456789abcdef\"\n  public_url = \"hooks.example.com\" # <-\n}\n", "must be an http:// or https:// URL"},
		{"tls_cert without tls_key", base + "admin {\n  token = \"0123456789abcdef\"\n  tls_cert = \"/etc/walhook/cert.pem\" # <-\n}\n", "tls_cert needs tls_key"},
		{"tls pair that does not load", base + "admin {\n  token = \"0123456789abcdef\"\n  tls_cert = \"/nonexistent/cert.pem\" # <-\n  tls_key = \"/nonexistent/key.pem\"\n}\n", "do not load as a pair"},
		{"trusted_proxies", base + "admin {\n  token = \"0123456789abcdef\"\n  trusted_proxies = [\"10.0.0.0/33\"] # <-\n}\n", "is not a CIDR network"},
		{"unknown op", base + "event \"b\" {\n  table = \"t\"\n  on = [\"upsert\"] # <-\n}\n", "\"upsert\" is not an operation"},
		{"bad table name", base + "event \"b\" {\n  table = \"a.b.c\" # <-\n  on = [\"insert\"]\n}\n", "is not a table name"},
		{"duplicate event", base + "event \"item.created\" { # <-\n  table = \"t\"\n  on = [\"insert\"]\n}\n", "Duplicate event name"},
		{"glob in event name", base + "event \"item.*\" { # <-\n  table = \"t\"\n  on = [\"insert\"]\n}\n", "Invalid event name"},
		{"env unset in rule", base + "event \"b\" {\n  table = \"t\"\n  on = [\"insert\"]\n  when = env(\"WALHOOK_TEST_UNSET\") == \"x\" # <-\n}\n", "WALHOOK_TEST_UNSET is not set"},
		{"filter matches no event", base + "endpoint \"e\" {\n  url = \"https://example.com/hook\"\n  events = [\"invoice.*\"] # <-\n  secret = \"" + okSecret + "\"\n}\n", "\"invoice.*\" matches no event"},
		{"no events", base + "endpoint \"e\" {\n  url = \"https://example.com/hook\"\n  events = [] # <-\n  secret = \"" + okSecret + "\"\n}\n", "subscribes to no event"},
		{"url scheme", base + "endpoint \"e\" {\n  url = \"ftp://example.com/x\" # <-\n  events = [\"*\"]\n  secret = \"" + okSecret + "\"\n}\n", "must be an http:// or https:// URL"},
		{"url without host", base + "endpoint \"e\" {\n  url = \"https:///path\" # <-\n  events = [\"*\"]\n  secret = \"" + okSecret + "\"\n}\n", "has no host"},
		{"url does not parse", base + "endpoint \"e\" {\n  url = \"http://[::1/\" # <-\n  events = [\"*\"]\n  secret = \"" + okSecret + "\"\n}\n", "does not parse"},
		{"url with a raw space", base + "endpoint \"e\" {\n  url = \"http://host/p?q=a b\" # <-\n  events = [\"*\"]\n  secret = \"" + okSecret + "\"\n}\n", "has a raw space at byte 17: percent-encode it (%20)"},
		{"url with a tab", base + "endpoint \"e\" {\n  url = \"http://host/p\\tq\" # <-\n  events = [\"*\"]\n  secret = \"" + okSecret + "\"\n}\n", "has a tab at byte 13"},
		{"url with a fragment", base + "endpoint \"e\" {\n  url = \"http://host/p#\" # <-\n  events = [\"*\"]\n  secret = \"" + okSecret + "\"\n}\n", "must not have a #fragment"},
		{"missing secret", base + "endpoint \"e\" { # <-\n  url = \"https://example.com/hook\"\n  events = [\"*\"]\n}\n", "needs secret"},
		{"secret without prefix", base + endpoint("  secret = \"abcdefabcdefabcdefabcdefabcdef\" # <-"), "starts with \"whsec_\""},
		{"secret not base64", base + endpoint("  secret = \"whsec_not base64!\" # <-"), "not valid base64"},
		{"secret too short", base + endpoint("  secret = \""+short+"\" # <-"), "this one holds 8"},
		{"env unset secret", base + endpoint("  secret = env(\"WALHOOK_TEST_UNSET\") # <-"), "WALHOOK_TEST_UNSET is not set and has no default"},
		{"secret and secrets", base + endpoint("  secret = \""+okSecret+"\"\n  secrets = [\""+okSecret+"\"] # <-"), "Give either secret or secrets"},
		{"bad signing", base + endpoint("  secret = \"abcdefabcdefabcdefabcdef\"\n  signing = \"rsa\" # <-"), "signing is one of"},
		{"bad ordering", base + endpoint("  secret = \""+okSecret+"\"\n  ordering = \"fifo\" # <-"), "ordering is \"none\" or \"key\""},
		{"bad duration", base + endpoint("  secret = \""+okSecret+"\"\n  timeout = \"15 seconds\" # <-"), "Invalid duration \"15 seconds\""},
		{"zero duration", base + endpoint("  secret = \""+okSecret+"\"\n  disable_after = \"0s\" # <-"), "must be positive"},
		{"concurrency", base + endpoint("  secret = \""+okSecret+"\"\n  concurrency = 0 # <-"), "concurrency must be at least 1"},
		{"rate_limit unit", base + endpoint("  secret = \""+okSecret+"\"\n  rate_limit = \"500/day\" # <-"), "the unit after / is s, m or h"},
		{"rate_limit count", base + endpoint("  secret = \""+okSecret+"\"\n  rate_limit = \"0/s\" # <-"), "Invalid rate_limit"},
		{"rate_limit no unit", base + endpoint("  secret = \""+okSecret+"\"\n  rate_limit = \"500\" # <-"), "like \"500/s\" or \"3000/m\""},
		{"rate_limit empty", base + endpoint("  secret = \""+okSecret+"\"\n  rate_limit = \"\" # <-"), "empty rate_limit sets no limit"},
		{"empty retry schedule", base + endpoint("  secret = \""+okSecret+"\"\n  retry {\n    schedule = [] # <-\n  }"), "Empty retry schedule"},
		{"negative retry", base + endpoint("  secret = \""+okSecret+"\"\n  retry {\n    schedule = [\"5s\", \"-1m\"] # <-\n  }"), "must not be negative"},
		{"batch max_events zero", base + endpoint("  secret = \""+okSecret+"\"\n  batch {\n    max_events = 0 # <-\n  }"), "max_events is between 1 and 1000"},
		{"batch max_events too many", base + endpoint("  secret = \""+okSecret+"\"\n  batch {\n    max_events = 5000 # <-\n  }"), "max_events is between 1 and 1000"},
		{"batch max_bytes unit", base + endpoint("  secret = \""+okSecret+"\"\n  batch {\n    max_bytes = \"1GB\" # <-\n  }"), "use a whole number and a unit"},
		{"batch max_bytes small", base + endpoint("  secret = \""+okSecret+"\"\n  batch {\n    max_bytes = \"100B\" # <-\n  }"), "max_bytes is between 1KB and 64MB"},
		{"batch max_wait", base + endpoint("  secret = \""+okSecret+"\"\n  batch {\n    max_wait = \"1 minute\" # <-\n  }"), "is not a duration"},
		{"batch max_wait long", base + endpoint("  secret = \""+okSecret+"\"\n  batch {\n    max_wait = \"1m\" # <-\n  }"), "max_wait is between"},
		{"batch unknown", base + endpoint("  secret = \""+okSecret+"\"\n  batch {\n    max_count = 5 # <-\n  }"), "Unsupported argument"},
		{"bad header", base + strings.Replace(endpoint("  secret = \""+okSecret+"\"\n  headers = { \"X Bad\" = \"1\" }"), "{", "{ # <-", 1), "not a valid HTTP header name"},
		{"duplicate endpoint", base + endpoint("  secret = \""+okSecret+"\"") + strings.Replace(endpoint("  secret = \""+okSecret+"\""), "{", "{ # <-", 1), "Duplicate endpoint name"},
		{"body unknown attribute", base + endpoint("  secret = \""+okSecret+"\"\n  body = { t = event.typo } # <-"), "does not have an attribute named \"typo\""},
		{"admin without token", base + "admin { # <-\n  listen = \"127.0.0.1:8080\"\n}\n", "Missing admin token"},
		{"admin bad network", base + "admin {\n  token = \"0123456789abcdef0123\"\n  allow_networks = [\"10.0.0.0/33\"] # <-\n}\n", "is not a CIDR network"},
		{"admin bad listen", base + "admin {\n  token = \"0123456789abcdef0123\"\n  listen = \"8080\" # <-\n}\n", "Invalid listen address"},
		{"delivery log_attempts", base + "delivery {\n  log_attempts = \"some\" # <-\n}\n", "log_attempts is \"failures\" or \"all\""},
		{"delivery share", base + "delivery {\n  share = \"none\" # <-\n}\n", "share is \"overflow\""},
		{"standby_retry", "source \"postgres\" {\n  url = \"x\"\n  standby_retry = \"0s\" # <-\n}\n", "must be positive"},
		{"delivery max_in_flight", base + "delivery {\n  max_in_flight = 0 # <-\n}\n", "max_in_flight must be at least 1"},
		{"delivery ca_file missing", base + "delivery {\n  ca_file = \"/nonexistent/ca.pem\" # <-\n}\n", "The CA file cannot be read"},
		{"delivery ca_file not PEM", base + "delivery {\n  ca_file = \"config_test.go\" # <-\n}\n", "holds no PEM certificate"},
		{"state schema", base + "state {\n  schema = \"Walhook State\" # <-\n}\n", "Invalid schema name"},
		{"outbox event name", "source \"postgres\" {\n  url = \"x\"\n  outbox {\n    table = \"o\"\n    events = [\"order paid\"] # <-\n  }\n}\n", "Invalid event name"},
		{"outbox event twice", "source \"postgres\" {\n  url = \"x\"\n  outbox {\n    table = \"o\"\n    events = [\"a.b\", \"a.b\"] # <-\n  }\n}\n", "listed twice"},
		{"outbox events empty", "source \"postgres\" {\n  url = \"x\"\n  outbox {\n    table = \"o\"\n    events = [] # <-\n  }\n}\n", "No outbox events"},
		{"outbox event and block", "source \"postgres\" {\n  url = \"x\"\n  outbox {\n    table = \"o\"\n    events = [\"item.created\"] # <-\n  }\n}\n" + base[strings.Index(base, "event"):], "an outbox event and an event block"},
		{"outbox filter undeclared", "source \"postgres\" {\n  url = \"x\"\n  outbox {\n    table = \"o\"\n    events = [\"order.paid\"]\n  }\n}\nendpoint \"e\" {\n  url = \"https://example.com/hook\"\n  events = [\"ship.*\"] # <-\n  secret = \"" + okSecret + "\"\n}\n", "Events: order.paid"},
		{"payload schema of an undeclared event", "source \"postgres\" {\n  url = \"x\"\n  outbox {\n    table = \"o\"\n    events = [\"a.b\"]\n    payload_schemas = {\n      \"a.c\" = { type = \"object\" } # <-\n    }\n  }\n}\n", "not in the outbox block's events list"},
		{"payload schema not an object", "source \"postgres\" {\n  url = \"x\"\n  outbox {\n    table = \"o\"\n    events = [\"a.b\"]\n    payload_schemas = {\n      \"a.b\" = \"object\" # <-\n    }\n  }\n}\n", "is a JSON Schema object"},
		{"payload schemas without events", "source \"postgres\" {\n  url = \"x\"\n  outbox {\n    table = \"o\"\n    payload_schemas = {} # <-\n  }\n}\n", "add events = [...]"},
		{"two admin blocks", base + "admin {\n  token = \"0123456789abcdef0123\"\n}\nadmin { # <-\n  token = \"0123456789abcdef0123\"\n}\n", "Duplicate admin block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			line := markedLine(t, tt.src)
			_, diags := Parse([]byte(tt.src), "bad.hcl")
			if !diags.HasErrors() {
				t.Fatalf("no error; diagnostics: %v", diags)
			}
			for _, d := range diags {
				if d.Severity != hcl.DiagError || !strings.Contains(d.Summary+": "+d.Detail, tt.want) {
					continue
				}
				if d.Subject == nil || d.Subject.Start.Line != line {
					t.Fatalf("%q at %v, want line %d", tt.want, d.Subject, line)
				}
				return
			}
			t.Fatalf("no error containing %q; got: %s", tt.want, diags.Error())
		})
	}
}

func TestWarnings(t *testing.T) {
	t.Parallel()
	src := base + endpoint("  secret = \"short\"\n  signing = \"hmac-sha256\"") +
		"admin {\n  token = \"tiny\"\n}\n"
	cfg, diags := Parse([]byte(src), "warn.hcl")
	if diags.HasErrors() || cfg == nil {
		t.Fatalf("errors: %s", diags.Error())
	}
	var got []string
	for _, d := range diags {
		got = append(got, d.Summary)
	}
	if strings.Join(got, ",") != "Short secret,Short admin token" {
		t.Errorf("warnings = %v", got)
	}
}

func exampleFile() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "config.example.hcl")
}

func TestExampleConfig(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://localhost/crm")
	t.Setenv("WALHOOK_ADMIN_TOKEN", "test-admin-token-0123456789")
	t.Setenv("CRM_WEBHOOK_SECRET", okSecret)
	t.Setenv("LEGACY_SECRET", "legacy-secret-0123456789")
	cfg, diags := Load(exampleFile())
	if len(diags) > 0 {
		var buf bytes.Buffer
		WriteDiagnostics(&buf, nil, diags)
		t.Fatalf("diagnostics:\n%s", buf.String())
	}
	if got := strings.Join(cfg.Source.Tables, ","); got != "public.contacts,public.deals,public.invoices" {
		t.Errorf("tables = %s", got)
	}
	if cfg.Source.Slot != "walhook" || cfg.Source.Mode != "logical" || cfg.State.Schema != "walhook" || cfg.State.URL != "" {
		t.Errorf("source %+v state %+v", cfg.Source, cfg.State)
	}
	if cfg.Admin == nil || cfg.Admin.Listen != "127.0.0.1:8080" || len(cfg.Admin.Tokens) != 1 || cfg.Admin.SecretOverlap != 24*time.Hour {
		t.Errorf("admin = %+v", cfg.Admin)
	}
	if cfg.Delivery.MaxInFlight != 10000 || cfg.Delivery.LogAttempts != "failures" || cfg.Delivery.RetryWorkers != 64 || cfg.Delivery.Share != ShareOverflow || cfg.Delivery.ShutdownTimeout != 30*time.Second {
		t.Errorf("delivery = %+v", cfg.Delivery)
	}
	if len(cfg.Events) != 5 || cfg.Events[2].Name != "deal.stage.changed" || cfg.Events[2].When == nil || cfg.Events[0].When != nil {
		t.Fatalf("events = %v", cfg.Events)
	}
	crm, legacy := cfg.Endpoints[0], cfg.Endpoints[1]
	if crm.Ordering != "key" || crm.Timeout != 15*time.Second || crm.DisableAfter != 5*24*time.Hour || crm.Signing != "standard-webhooks" ||
		crm.Headers["X-Source"] != "walhook" || len(crm.Retry) != 9 || crm.Retry[1] != 5*time.Minute || crm.Body != nil || crm.Concurrency != DefaultConcurrency {
		t.Errorf("crm = %+v", crm)
	}
	if !crm.RateLimit.IsZero() {
		t.Errorf("crm rate limit = %v, want none", crm.RateLimit)
	}
	if legacy.RateLimit.String() != "3000/m" {
		t.Errorf("legacy rate limit = %v, want 3000/m", legacy.RateLimit)
	}
	if legacy.Signing != "hmac-sha256" || legacy.Ordering != "none" || legacy.Body == nil || legacy.Secrets[0] != "legacy-secret-0123456789" {
		t.Errorf("legacy = %+v", legacy)
	}
	for _, name := range []string{"contact.created", "contact.updated", "deal.stage.changed"} {
		if !crm.Matches(name) {
			t.Errorf("crm does not match %s", name)
		}
	}
	if crm.Matches("deal.closed") || !legacy.Matches("invoice.paid") {
		t.Errorf("filters wrong")
	}
}

func TestExampleConfigNeedsItsEnv(t *testing.T) {
	for _, k := range []string{"DATABASE_URL", "WALHOOK_ADMIN_TOKEN", "CRM_WEBHOOK_SECRET", "LEGACY_SECRET"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	_, diags := Load(exampleFile())
	var buf bytes.Buffer
	if err := WriteDiagnostics(&buf, nil, diags); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"config.example.hcl:11:17: error: Error in function call",
		`url         = env("DATABASE_URL")`,
		"environment variable DATABASE_URL is not set",
		"environment variable LEGACY_SECRET is not set",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, ": error: ") != 4 {
		t.Errorf("want 4 errors (one per variable):\n%s", out)
	}
}

func TestParseDuration(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{
		"15s": 15 * time.Second, "5d": 120 * time.Hour, "1d12h": 36 * time.Hour, "1.5d": 36 * time.Hour,
		"500ms": 500 * time.Millisecond, "2h30m": 150 * time.Minute, "-1d": -24 * time.Hour,
	} {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "5", "d", "5days", "1d x", "..5d", "15 seconds"} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) did not fail", in)
		}
	}
}

func TestOutboxAndTables(t *testing.T) {
	t.Parallel()
	src := `source "postgres" {
  url = "postgres://x/y"
  outbox {
    table = "app.outbox"
    poll_interval = "250ms"
    batch_size = 100
  }
}
event "b.x" {
  table = "sales.deals"
  on = ["update", "update", "delete"]
}
event "a.x" {
  table = "contacts"
  on = ["truncate"]
}
endpoint "e" {
  url = "https://example.com"
  events = ["order.*"]
  secrets = ["` + okSecret + `", "` + okSecret + `"]
}
`
	cfg, diags := Parse([]byte(src), "outbox.hcl")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if len(diags) != 1 || !strings.Contains(diags[0].Detail, "outbox") {
		t.Errorf("want one warning about the outbox filter, got %v", diags)
	}
	if got := strings.Join(cfg.Source.Tables, ","); got != "app.outbox,public.contacts,sales.deals" {
		t.Errorf("tables = %s", got)
	}
	o := cfg.Source.Outbox
	if o.Table != "app.outbox" || o.PollInterval != 250*time.Millisecond || o.BatchSize != 100 || o.DeleteConsumed {
		t.Errorf("outbox = %+v", o)
	}
	if strings.Join(cfg.Events[0].Ops, ",") != "update,delete" {
		t.Errorf("ops = %v", cfg.Events[0].Ops)
	}
	if len(cfg.Endpoints[0].Secrets) != 2 {
		t.Errorf("secrets = %v", cfg.Endpoints[0].Secrets)
	}
}

// TestOutboxEvents checks the outbox block's events list: declared names
// join the catalogue and satisfy endpoint filters without a warning.
func TestOutboxEvents(t *testing.T) {
	t.Parallel()
	src := `source "postgres" {
  url  = "postgres://x/y"
  mode = "outbox"
  outbox {
    table  = "webhook_outbox"
    events = ["order.paid", "order.refunded"]
  }
}
event "item.created" {
  table = "items"
  on    = ["insert"]
}
endpoint "e" {
  url    = "https://example.com"
  events = ["order.*", "item.created"]
  secret = "` + okSecret + `"
}
`
	cfg, diags := Parse([]byte(src), "outbox.hcl")
	if len(diags) > 0 {
		t.Fatalf("diagnostics: %s", diags.Error())
	}
	if got := strings.Join(cfg.Source.Outbox.Events, ","); got != "order.paid,order.refunded" {
		t.Errorf("outbox events = %s", got)
	}
	if got := strings.Join(cfg.EventNames(), ","); got != "item.created,order.paid,order.refunded" {
		t.Errorf("event names = %s", got)
	}
	if r := cfg.Source.Outbox.EventsRange; r.Start.Line != 6 {
		t.Errorf("events range = %v, want line 6", r)
	}
}

// TestOutboxPayloadSchemas checks that payload_schemas, written in HCL,
// becomes the JSON Schema of the named outbox events, its description the
// event's.
func TestOutboxPayloadSchemas(t *testing.T) {
	t.Parallel()
	cfg, diags := Parse([]byte(`source "postgres" {
  url  = "postgres://x/y"
  mode = "outbox"
  outbox {
    table  = "webhook_outbox"
    events = ["order.paid", "order.refunded"]
    payload_schemas = {
      "order.paid" = {
        description = "An order was paid."
        type        = "object"
        required    = ["order_id", "amount"]
        properties  = { order_id = { type = "integer", minimum = 1 }, amount = { type = "string" } }
      }
    }
  }
}
`), "outbox.hcl")
	if len(diags) > 0 {
		t.Fatalf("diagnostics: %s", diags.Error())
	}
	o := cfg.Source.Outbox
	want := `{"description":"An order was paid.","properties":{"amount":{"type":"string"},"order_id":{"minimum":1,"type":"integer"}},"required":["order_id","amount"],"type":"object"}`
	if got := string(o.PayloadSchemas["order.paid"]); got != want || len(o.PayloadSchemas) != 1 {
		t.Errorf("payload schemas = %s\nwant order.paid = %s", o.PayloadSchemas, want)
	}
	if o.Description("order.paid") != "An order was paid." || o.Description("order.refunded") != "" {
		t.Errorf("descriptions %q, %q", o.Description("order.paid"), o.Description("order.refunded"))
	}
}

// TestUnmatchedFilterWarnsOnce checks that a filter matching nothing in
// an outbox config without declared events is one warning, printed once.
func TestUnmatchedFilterWarnsOnce(t *testing.T) {
	t.Parallel()
	src := `source "postgres" {
  url  = "postgres://x/y"
  mode = "outbox"
  outbox { table = "webhook_outbox" }
}
endpoint "e" {
  url    = "https://example.com"
  events = ["order.*"]
  secret = "` + okSecret + `"
}
`
	_, diags := Parse([]byte(src), "outbox.hcl")
	if len(diags) != 1 || diags[0].Severity != hcl.DiagWarning {
		t.Fatalf("want one warning, got %v", diags)
	}
	var buf bytes.Buffer
	if err := WriteDiagnostics(&buf, map[string][]byte{"outbox.hcl": []byte(src)}, diags); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Count(out, "Filter matches no event") != 1 || strings.Count(out, `"order.*" matches no event block`) != 1 {
		t.Errorf("the warning is not printed exactly once:\n%s", out)
	}
	want := "outbox.hcl:8:12: warning: Filter matches no event\n  8:   events = [\"order.*\"]\n  \"order.*\" matches no event block"
	if !strings.HasPrefix(out, want) {
		t.Errorf("output:\n%s\nwant it to start with:\n%s", out, want)
	}
}

func TestAdminBehindProxy(t *testing.T) {
	t.Parallel()
	src := base + `admin {
  token           = "0123456789abcdef"
  public_url      = "HTTPS://Hooks.Example.com/"
  trusted_proxies = ["10.0.0.0/8", "192.0.2.7"]
}
`
	cfg, diags := Parse([]byte(src), "proxy.hcl")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	a := cfg.Admin
	if a.PublicURL != "https://hooks.example.com" || len(a.TrustedProxies) != 2 || a.TrustedProxies[1].String() != "192.0.2.7/32" {
		t.Errorf("admin = %+v", a)
	}
}

func TestBatchBlock(t *testing.T) {
	t.Parallel()
	parse := func(t *testing.T, block string) *Endpoint {
		t.Helper()
		cfg, diags := Parse([]byte(base+endpoint("  secret = \""+okSecret+"\"\n"+block)), "batch.hcl")
		if diags.HasErrors() {
			t.Fatalf("diagnostics: %s", diags.Error())
		}
		return cfg.Endpoints[0]
	}
	if ep := parse(t, ""); ep.Batch != nil {
		t.Errorf("no batch block: batch = %+v, want nil", ep.Batch)
	}
	if b := parse(t, "  batch {}").Batch; b == nil || *b != (Batch{MaxEvents: 100, MaxBytes: 1 << 20, MaxWait: 50 * time.Millisecond}) {
		t.Errorf("empty batch block = %+v, want the defaults", b)
	}
	b := parse(t, "  batch {\n    max_events = 1000\n    max_bytes = \"256KB\"\n    max_wait = \"0s\"\n  }").Batch
	if b == nil || *b != (Batch{MaxEvents: 1000, MaxBytes: 256 << 10, MaxWait: 0}) {
		t.Errorf("batch = %+v", b)
	}
}

func TestDeliveryHTTP2(t *testing.T) {
	t.Parallel()
	for src, want := range map[string]bool{
		base:                                     false,
		base + "delivery {\n  http2 = true\n}\n": true,
		base + "delivery {\n  http2 = false\n}\n": false,
	} {
		cfg, diags := Parse([]byte(src), "t.hcl")
		if diags.HasErrors() {
			t.Fatalf("%s: %s", src, diags.Error())
		}
		if cfg.Delivery.HTTP2 != want {
			t.Errorf("%s: HTTP2 = %v, want %v", src, cfg.Delivery.HTTP2, want)
		}
	}
}

func TestStandbyRetry(t *testing.T) {
	t.Parallel()
	for src, want := range map[string]time.Duration{
		base: 0,
		strings.Replace(base, `{ url = "postgres://localhost/crm" }`, "{\n  url = \"postgres://localhost/crm\"\n  standby_retry = \"250ms\"\n}", 1): 250 * time.Millisecond,
	} {
		cfg, diags := Parse([]byte(src), "t.hcl")
		if diags.HasErrors() {
			t.Fatalf("%s: %s", src, diags.Error())
		}
		if cfg.Source.StandbyRetry != want {
			t.Errorf("%s: StandbyRetry = %v, want %v", src, cfg.Source.StandbyRetry, want)
		}
	}
}
