package config

import "github.com/hashicorp/hcl/v2"

// The block structs below are what gohcl decodes a file into; decode.go
// turns them into the validated Config. Their tags are the config language's
// schema: docs/config.md is checked against them by a test.

type fileBlock struct {
	Source    sourceBlock      `hcl:"source,block"`
	State     *stateBlock      `hcl:"state,block"`
	Admin     *adminBlock      `hcl:"admin,block"`
	Delivery  *deliveryBlock   `hcl:"delivery,block"`
	Events    []*eventBlock    `hcl:"event,block"`
	Endpoints []*endpointBlock `hcl:"endpoint,block"`
}

type sourceBlock struct {
	Kind        string    `hcl:"kind,label"`
	KindRange   hcl.Range `hcl:"kind,label_range"`
	URL         string    `hcl:"url"`
	URLRange    hcl.Range `hcl:"url,attr_value_range"`
	Slot        string    `hcl:"slot,optional"`
	SlotRange   hcl.Range `hcl:"slot,attr_value_range"`
	Publication string    `hcl:"publication,optional"`
	PubRange    hcl.Range `hcl:"publication,attr_value_range"`
	Mode        string    `hcl:"mode,optional"`
	ModeRange   hcl.Range `hcl:"mode,attr_value_range"`
	// StandbyRetry is standby_retry: how often a standby tries the slot.
	StandbyRetry      string       `hcl:"standby_retry,optional"`
	StandbyRetryRange hcl.Range    `hcl:"standby_retry,attr_value_range"`
	Outbox            *outboxBlock `hcl:"outbox,block"`
	DefRange          hcl.Range    `hcl:",def_range"`
}

type outboxBlock struct {
	Table          string    `hcl:"table"`
	TableRange     hcl.Range `hcl:"table,attr_value_range"`
	PollInterval   string    `hcl:"poll_interval,optional"`
	PollRange      hcl.Range `hcl:"poll_interval,attr_value_range"`
	BatchSize      *int      `hcl:"batch_size,optional"`
	BatchSizeRange hcl.Range `hcl:"batch_size,attr_value_range"`
	DeleteConsumed bool      `hcl:"delete_consumed,optional"`
	Events         []string  `hcl:"events,optional"`
	EventsRange    hcl.Range `hcl:"events,attr_value_range"`
	// PayloadSchemas is kept as an expression: an object of JSON Schemas
	// by event name, checked in outbox.go.
	PayloadSchemas      hcl.Expression `hcl:"payload_schemas,optional"`
	PayloadSchemasRange hcl.Range      `hcl:"payload_schemas,attr_range"`
}

type stateBlock struct {
	URL         string    `hcl:"url,optional"`
	Schema      string    `hcl:"schema,optional"`
	SchemaRange hcl.Range `hcl:"schema,attr_value_range"`

	Retention      string    `hcl:"retention,optional"`
	RetentionRange hcl.Range `hcl:"retention,attr_value_range"`
}

type adminBlock struct {
	Listen             string    `hcl:"listen,optional"`
	ListenRange        hcl.Range `hcl:"listen,attr_value_range"`
	Token              *string   `hcl:"token,optional"`
	TokenRange         hcl.Range `hcl:"token,attr_value_range"`
	Tokens             []string  `hcl:"tokens,optional"`
	TokensRange        hcl.Range `hcl:"tokens,attr_value_range"`
	AllowNetworks      []string  `hcl:"allow_networks,optional"`
	AllowNetworksRange hcl.Range `hcl:"allow_networks,attr_value_range"`
	AllowHTTP          bool      `hcl:"allow_http,optional"`
	SecretOverlap      string    `hcl:"secret_overlap,optional"`
	SecretOverlapRange hcl.Range `hcl:"secret_overlap,attr_value_range"`
	PublicURL          string    `hcl:"public_url,optional"`
	PublicURLRange     hcl.Range `hcl:"public_url,attr_value_range"`
	TrustedProxies     []string  `hcl:"trusted_proxies,optional"`
	TrustedRange       hcl.Range `hcl:"trusted_proxies,attr_value_range"`
	TLSCert            string    `hcl:"tls_cert,optional"`
	TLSCertRange       hcl.Range `hcl:"tls_cert,attr_value_range"`
	TLSKey             string    `hcl:"tls_key,optional"`
	TLSKeyRange        hcl.Range `hcl:"tls_key,attr_value_range"`
	DefRange           hcl.Range `hcl:",def_range"`
}

type deliveryBlock struct {
	MaxInFlight          *int      `hcl:"max_in_flight,optional"`
	MaxInFlightRange     hcl.Range `hcl:"max_in_flight,attr_value_range"`
	LogAttempts          string    `hcl:"log_attempts,optional"`
	LogAttemptsRange     hcl.Range `hcl:"log_attempts,attr_value_range"`
	RetryWorkers         *int      `hcl:"retry_workers,optional"`
	RetryWorkersRange    hcl.Range `hcl:"retry_workers,attr_value_range"`
	ShutdownTimeout      string    `hcl:"shutdown_timeout,optional"`
	ShutdownTimeoutRange hcl.Range `hcl:"shutdown_timeout,attr_value_range"`
	CAFile               string    `hcl:"ca_file,optional"`
	CAFileRange          hcl.Range `hcl:"ca_file,attr_value_range"`
	Share                string    `hcl:"share,optional"`
	ShareRange           hcl.Range `hcl:"share,attr_value_range"`
	HTTP2                *bool     `hcl:"http2,optional"`
}

type eventBlock struct {
	Name        string         `hcl:"name,label"`
	NameRange   hcl.Range      `hcl:"name,label_range"`
	Description string         `hcl:"description,optional"`
	Table       string         `hcl:"table"`
	TableRange  hcl.Range      `hcl:"table,attr_value_range"`
	On          []string       `hcl:"on"`
	OnRange     hcl.Range      `hcl:"on,attr_value_range"`
	When        hcl.Expression `hcl:"when,optional"`
	WhenRange   hcl.Range      `hcl:"when,attr_range"`
	Key         hcl.Expression `hcl:"key,optional"`
	KeyRange    hcl.Range      `hcl:"key,attr_range"`
	Tenant      hcl.Expression `hcl:"tenant,optional"`
	TenantRange hcl.Range      `hcl:"tenant,attr_range"`
	Data        hcl.Expression `hcl:"data,optional"`
	DataRange   hcl.Range      `hcl:"data,attr_range"`
	DefRange    hcl.Range      `hcl:",def_range"`
}

type endpointBlock struct {
	Name                 string            `hcl:"name,label"`
	NameRange            hcl.Range         `hcl:"name,label_range"`
	URL                  string            `hcl:"url"`
	URLRange             hcl.Range         `hcl:"url,attr_value_range"`
	Events               []string          `hcl:"events"`
	EventsRange          hcl.Range         `hcl:"events,attr_value_range"`
	Secret               *string           `hcl:"secret,optional"`
	SecretRange          hcl.Range         `hcl:"secret,attr_value_range"`
	Secrets              []string          `hcl:"secrets,optional"`
	SecretsRange         hcl.Range         `hcl:"secrets,attr_value_range"`
	Signing              string            `hcl:"signing,optional"`
	SigningRange         hcl.Range         `hcl:"signing,attr_value_range"`
	SignatureHeader      string            `hcl:"signature_header,optional"`
	SignatureHeaderRange hcl.Range         `hcl:"signature_header,attr_value_range"`
	Headers              map[string]string `hcl:"headers,optional"`
	Timeout              string            `hcl:"timeout,optional"`
	TimeoutRange         hcl.Range         `hcl:"timeout,attr_value_range"`
	Ordering             string            `hcl:"ordering,optional"`
	OrderingRange        hcl.Range         `hcl:"ordering,attr_value_range"`
	Concurrency          *int              `hcl:"concurrency,optional"`
	ConcurrencyRange     hcl.Range         `hcl:"concurrency,attr_value_range"`
	RateLimit            string            `hcl:"rate_limit,optional"`
	RateLimitRange       hcl.Range         `hcl:"rate_limit,attr_value_range"`
	Retry                *retryBlock       `hcl:"retry,block"`
	Batch                *batchBlock       `hcl:"batch,block"`
	DisableAfter         string            `hcl:"disable_after,optional"`
	DisableAfterRange    hcl.Range         `hcl:"disable_after,attr_value_range"`
	Body                 hcl.Expression    `hcl:"body,optional"`
	BodyRange            hcl.Range         `hcl:"body,attr_range"`
	DefRange             hcl.Range         `hcl:",def_range"`
}

type retryBlock struct {
	Schedule      []string  `hcl:"schedule"`
	ScheduleRange hcl.Range `hcl:"schedule,attr_value_range"`
}

type batchBlock struct {
	MaxEvents      *int      `hcl:"max_events,optional"`
	MaxEventsRange hcl.Range `hcl:"max_events,attr_value_range"`
	MaxBytes       string    `hcl:"max_bytes,optional"`
	MaxBytesRange  hcl.Range `hcl:"max_bytes,attr_value_range"`
	MaxWait        string    `hcl:"max_wait,optional"`
	MaxWaitRange   hcl.Range `hcl:"max_wait,attr_value_range"`
	DefRange       hcl.Range `hcl:",def_range"`
}

// present reports whether an attribute was written (its range was recorded).
func present(r hcl.Range) bool { return r.Filename != "" }
