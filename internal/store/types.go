package store

import (
	"errors"
	"time"
)

// ErrNotFound is returned when a row asked for by id does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a row changed between reading and writing it.
var ErrConflict = errors.New("changed concurrently")

// Status is a delivery's state in the retry store.
type Status string

// Delivery states.
const (
	StatusPending   Status = "pending"   // waiting for its next attempt
	StatusDelivered Status = "delivered" // accepted with a 2xx
	StatusFailed    Status = "failed"    // schedule exhausted, endpoint disabled or gone; replayable
)

// Delivery is one event bound for one endpoint, as persisted.
type Delivery struct {
	// ID is deterministic: DeliveryID(EventID, EndpointID).
	ID         string
	EventID    string
	EventType  string
	EndpointID string // "cfg:<name>" for HCL endpoints, "ep_…" for API ones
	Key        string // ordering key; empty when the endpoint does not order
	Tenant     string
	Body       []byte // the exact body to POST
	EventTime  time.Time
	CommitLSN  uint64
	// Position is the change's position within its transaction: with
	// CommitLSN it gives the commit order that keyed deliveries follow.
	Position int
	// Seq orders deliveries of one endpoint and key (assigned by the store).
	Seq           int64
	Status        Status
	Attempts      int
	NextAttemptAt time.Time
	LastStatus    int // HTTP status of the last attempt; 0 when none
	LastError     string
	CreatedAt     time.Time
	UpdatedAt     time.Time
	// Claim, on a delivery handed to WriteBatch, stores it already claimed
	// by this instance (SetInstance) until NextAttemptAt, as ClaimDue would:
	// the writer sends it from memory and completes it like a claimed one,
	// and nobody else claims it before the lease ends. WriteBatch returns
	// the claimed deliveries it inserted. Not read back.
	Claim bool
	// BatchID is the id of the batch request the delivery failed in, its
	// retries go out with (batches.go); empty: none. Written with the
	// delivery; read back only by ClaimBatchMates.
	BatchID string
}

// Attempt is one HTTP attempt of a delivery, for the attempts log.
type Attempt struct {
	ID          int64
	DeliveryID  string
	EventID     string
	EventType   string
	EndpointID  string
	Number      int // 1 for the first attempt
	AttemptedAt time.Time
	Duration    time.Duration
	StatusCode  int    // 0 when no response came
	Error       string // empty on success
	Response    string // response body, truncated
	// RequestHeaders are the headers the attempt was sent with, each name's
	// values joined by ", " (the values of a config endpoint's own headers
	// masked by the dispatcher); nil when not recorded.
	RequestHeaders map[string]string
	// Connected reports that the attempt opened a connection to the
	// endpoint rather than reusing one (for metrics; not stored).
	Connected bool
}

// OK reports whether the attempt was accepted (a 2xx answer).
func (a Attempt) OK() bool { return a.Error == "" && a.StatusCode >= 200 && a.StatusCode < 300 }

// Health is an endpoint's delivery health.
type Health struct {
	EndpointID          string
	ConsecutiveFailures int
	FailingSince        *time.Time // nil while healthy
	LastSuccessAt       *time.Time
	LastFailureAt       *time.Time
	Disabled            bool
	DisabledAt          *time.Time
	DisabledReason      string
	// Limits is what the instances sending to the endpoint published of
	// its limits (limits.go).
	Limits ClusterLimits
}

// Webhook is an endpoint registered through the admin API.
type Webhook struct {
	ID          string // "ep_…"
	URL         string
	Description string
	Events      []string
	Tenant      string
	Active      bool
	Headers     map[string]string
	Signing     string
	Secrets     []Secret // newest first
	// RateLimit caps requests to the webhook ("500/s", "3000/m", "10/h",
	// as limit.ParseRate reads it); empty means none.
	RateLimit string
	// Batch, when set, sends the webhook many events per request; nil:
	// one event per request.
	Batch     *WebhookBatch
	CreatedAt time.Time
	UpdatedAt time.Time
}

// WebhookBatch is an API webhook's batch, resolved (docs/api.md).
type WebhookBatch struct {
	MaxEvents int           `json:"max_events"`
	MaxBytes  int           `json:"max_bytes"`
	MaxWait   time.Duration `json:"max_wait_ns"`
}

// Secret is a signing secret; a rotated-out one signs until ExpiresAt.
type Secret struct {
	Value     string     `json:"value"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// FailedEvaluation is a rule that failed on a captured change, or an
// endpoint body that could not be rendered.
type FailedEvaluation struct {
	ID        int64
	Rule      string
	Table     string
	Op        string
	XID       uint32
	CommitLSN uint64
	EndLSN    uint64
	Position  int
	Error     string
	Row       []byte // JSON
	Old       []byte // JSON: the row before an update; nil otherwise
	// EventType, EventID and Endpoint are the event the failure stands for
	// and, when set, the only endpoint a replay sends it to.
	EventType string
	EventID   string
	Endpoint  string
	// Replay is what a replay evaluates again (event.EncodeReplay); written
	// by RecordFailures, not read by the listings (see Replayable).
	Replay     []byte
	Replayable bool
	// Status is failed, replay_requested, replaying or replayed.
	Status            string
	Replays           int  // replays that ended
	ReplayEvents      *int // events the last replay dispatched
	ReplayRequestedAt *time.Time
	ReplayedAt        *time.Time
	CreatedAt         time.Time
	UpdatedAt         time.Time
}
