package config

import (
	"time"

	"github.com/walhook/walhook/internal/limit"
)

// Defaults are resolved here, once: the decoded Config and the endpoints
// registered through the API carry every value, and the packages that use
// them (dispatch, sender, relay) keep no defaults of their own.

// Endpoint defaults, for HCL endpoints and API webhooks alike.
const (
	DefaultEndpointTimeout = 15 * time.Second
	// DefaultConcurrency is the ceiling of an endpoint's adaptive
	// concurrency limit when it sets none: the limit starts at
	// limit.DefaultInitial and grows while the endpoint keeps up.
	DefaultConcurrency  = limit.DefaultCeiling
	DefaultDisableAfter = 5 * 24 * time.Hour
)

// Batch defaults (an endpoint's batch block, an API webhook's batch);
// the bounds are internal/endpointspec's.
const (
	DefaultBatchMaxEvents = 100
	DefaultBatchMaxBytes  = 1 << 20
	DefaultBatchMaxWait   = 50 * time.Millisecond
)

// DefaultBatch is a batch block with every field left out.
func DefaultBatch() *Batch {
	return &Batch{MaxEvents: DefaultBatchMaxEvents, MaxBytes: DefaultBatchMaxBytes, MaxWait: DefaultBatchMaxWait}
}

// DefaultDelivery is the delivery block's defaults.
func DefaultDelivery() Delivery {
	return Delivery{MaxInFlight: 10000, LogAttempts: LogFailures, RetryWorkers: 64, Share: ShareOverflow, ShutdownTimeout: 30 * time.Second}
}

// StateURL is the state database's URL: state.url, or the source's when
// it is not set.
func (c *Config) StateURL() string {
	if c.State.URL != "" {
		return c.State.URL
	}
	return c.Source.URL
}
