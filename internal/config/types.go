package config

import (
	"encoding/json"
	"net/netip"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/walhook/walhook/internal/event"
	"github.com/walhook/walhook/internal/limit"
)

// Config is a loaded, validated walhook configuration.
type Config struct {
	Filename  string
	Source    Source
	State     State
	Admin     *Admin // nil when there is no admin block
	Delivery  Delivery
	Events    []*Event
	Endpoints []*Endpoint
}

// Mode is where changes come from.
type Mode string

// Source modes.
const (
	ModeLogical Mode = "logical" // the replication slot
	ModeOutbox  Mode = "outbox"  // polling an outbox table
)

// Ordering is an endpoint's delivery order.
type Ordering string

// Orderings.
const (
	OrderingNone Ordering = "none" // deliveries in parallel, any order
	OrderingKey  Ordering = "key"  // one key's deliveries one at a time, in commit order
)

// LogAttempts says which attempts go to the attempts log.
type LogAttempts string

// Attempt logging modes.
const (
	LogFailures LogAttempts = "failures" // failed attempts and retries
	LogAll      LogAttempts = "all"      // successful first attempts too
)

// Share says which first deliveries go through the retry store, where
// every instance claims them (docs/scaling.md).
type Share string

// Sharing modes.
const (
	// ShareOverflow: the slot holder sends what it can from memory; what
	// memory cannot hold or its endpoint cannot take soon is stored.
	ShareOverflow Share = "overflow"
	// ShareAll: every delivery is stored, then claimed and sent by any
	// instance, the slot holder included.
	ShareAll Share = "all"
)

// Source says where changes come from.
type Source struct {
	URL         string // libpq URL or key=value DSN
	Slot        string // default "walhook"
	Publication string // default "walhook"
	// Mode is ModeLogical (default) or ModeOutbox (polling an outbox table).
	Mode   Mode
	Outbox *Outbox // nil unless an outbox block is given
	// Tables is every "schema.table" the events read, sorted: what the
	// publication must cover.
	Tables []string
	// StandbyRetry is how often an instance whose slot another instance
	// holds tries it (a look at pg_replication_slots); 0: the reader's
	// default (1s). A leader that stops hands over at once regardless.
	StandbyRetry time.Duration
}

// Outbox names the outbox table and the events its rows may carry
// (docs/outbox.md).
type Outbox struct {
	Table        string        // "schema.table"
	TableRange   hcl.Range     // where table is written, for diagnostics
	PollInterval time.Duration // default 1s
	BatchSize    int           // default 500
	// DeleteConsumed deletes outbox rows once their events are settled
	// (logical mode; polling mode always deletes).
	DeleteConsumed bool
	// Events are the event names the application may write into the table
	// (the events list): the catalogue API webhooks subscribe from. Empty
	// when the config declares none.
	Events      []string
	EventsRange hcl.Range // where events is written, for diagnostics
	// PayloadSchemas are the JSON Schemas (as JSON) the payload_schemas
	// attribute declares for some of Events, by name; the others' payload
	// is any JSON object or array.
	PayloadSchemas map[string]json.RawMessage
}

// State says where retry state lives.
type State struct {
	URL    string // empty: the source database
	Schema string // default "walhook"
	// Retention is how long delivered deliveries, their attempts and failed
	// evaluations are kept; default 7 days. Failed and pending deliveries
	// are kept until they are delivered or replayed.
	Retention time.Duration
}

// DefaultRetention is how long the delivery log keeps what was delivered.
const DefaultRetention = 7 * 24 * time.Hour

// Admin configures the admin listener: API, /metrics, /healthz, /readyz.
type Admin struct {
	Listen string   // default "127.0.0.1:8080"
	Tokens []string // from token and tokens; at least one
	// AllowNetworks lets API-registered endpoints reach these otherwise
	// refused networks (loopback, private, link-local, CGNAT, metadata).
	AllowNetworks []netip.Prefix
	// AllowHTTP lets API-registered endpoints use plain http (only to hosts
	// that AllowNetworks allows or loopback when allowed); default false.
	AllowHTTP bool
	// SecretOverlap is how long a rotated-out secret keeps signing; default 24h.
	SecretOverlap time.Duration
	// PublicURL is the origin browsers reach the console at through a
	// TLS-terminating proxy ("https://hooks.example.com"); empty: the
	// listener's own (docs/console.md, "Behind a proxy").
	PublicURL string
	// TrustedProxies are the proxy addresses whose X-Forwarded-Proto,
	// -Host and -For headers are believed.
	TrustedProxies []netip.Prefix
	// TLSCert and TLSKey are PEM files: with both, the admin listener
	// serves HTTPS and reads them again when they change.
	TLSCert, TLSKey string
}

// Delivery holds process-wide delivery settings (the optional delivery block).
type Delivery struct {
	// MaxInFlight caps deliveries held in memory across all endpoints;
	// beyond it, deliveries go to the retry store. Default 10000.
	MaxInFlight int
	// LogAttempts is LogFailures (default) or LogAll: whether successful
	// first attempts are written (batched) to the attempts log.
	LogAttempts LogAttempts
	// RetryWorkers is how many retry deliveries run at once; default 64.
	RetryWorkers int
	// Share is ShareOverflow (default) or ShareAll.
	Share Share
	// ShutdownTimeout bounds the drain on SIGTERM; default 30s.
	ShutdownTimeout time.Duration
	// CAFile is a PEM file of certificate authorities trusted for HTTPS
	// endpoints besides the system's (a private or self-signed CA); empty:
	// the system's only.
	CAFile string
	// HTTP2 offers HTTP/2 to HTTPS endpoints (http2 = true); by default
	// they get HTTP/1.1, which costs less CPU per request on both sides
	// (docs/operations.md, "The HTTP/1.1 path").
	HTTP2 bool
}

// Event is a rule: which changes become the named event, and its payload.
type Event struct {
	Name        string
	Description string
	Schema      string // default "public"
	Table       string
	Ops         []string       // insert, update, delete, truncate
	When        hcl.Expression // nil: always
	WhenText    string         // When as written in the config, for the catalogue
	Key         hcl.Expression // nil: the primary key columns of the row
	Tenant      hcl.Expression // nil: no tenant
	Data        hcl.Expression // nil: new, or old on delete
	DeclRange   hcl.Range
	TableRange  hcl.Range // where table is written, for diagnostics
}

// QualifiedTable is "schema.table".
func (e *Event) QualifiedTable() string { return e.Schema + "." + e.Table }

// Endpoint is an HCL-configured (operator-trusted) webhook endpoint.
type Endpoint struct {
	Name    string
	URL     string
	Events  []string // exact names or path.Match globs ("contact.*", "*")
	Secrets []string // first signs; all sign during rotation
	Signing string   // "standard-webhooks" (default) | "hmac-sha256" | "stripe" | "github"
	// SignatureHeader overrides the hmac-sha256 signature header name
	// (default X-Webhook-Signature).
	SignatureHeader string
	Headers         map[string]string
	Timeout         time.Duration // default 15s
	Ordering        Ordering      // OrderingNone (default) | OrderingKey
	// Concurrency is the ceiling of the endpoint's adaptive in-flight
	// limit (internal/limit); default DefaultConcurrency.
	Concurrency int
	// RateLimit caps requests per unit of time, first attempts and retries
	// together (rate_limit = "500/s"); zero means none.
	RateLimit    limit.Rate
	Retry        []time.Duration // delays after each failed attempt; default Standard Webhooks schedule
	DisableAfter time.Duration   // default 5 days
	Body         hcl.Expression  // nil: {"id","type","timestamp","data"}
	// Batch, when set, sends many events in one request (docs/webhooks.md,
	// "Batches"); nil: one event per request.
	Batch     *Batch
	DeclRange hcl.Range
}

// Batch is an endpoint's batch block: how many events one request may
// carry, and how long a first attempt waits for more.
type Batch struct {
	MaxEvents int           // 1..endpointspec.MaxBatchEvents; default DefaultBatchMaxEvents
	MaxBytes  int           // bytes of event bodies; default DefaultBatchMaxBytes
	MaxWait   time.Duration // default DefaultBatchMaxWait; 0: send what is queued
}

// Matches reports whether the endpoint subscribes to eventType.
func (e *Endpoint) Matches(eventType string) bool { return MatchAny(e.Events, eventType) }

// MatchAny reports whether eventType matches any of the filters: an exact
// name, a glob where * spans one or more dot-separated segments' characters
// (path.Match over the name with "." kept literal), or "*".
func MatchAny(filters []string, eventType string) bool { return event.MatchAny(filters, eventType) }

// DefaultRetrySchedule is the Standard Webhooks schedule after the immediate
// first attempt: 5s, 5m, 30m, 2h, 5h, 10h, 14h, 20h, 24h.
var DefaultRetrySchedule = []time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour,
	10 * time.Hour, 14 * time.Hour, 20 * time.Hour, 24 * time.Hour,
}
