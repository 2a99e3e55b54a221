package dispatch

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/walhook/walhook/internal/store"
)

// healthCache keeps endpoint health in memory so the hot path can ask
// "disabled?" without a query; the store is the truth, refreshed often so
// that an endpoint enabled or disabled elsewhere (API, another instance)
// is seen within seconds.
type healthCache struct {
	store Store
	log   zerolog.Logger
	mu    sync.RWMutex
	m     map[string]store.Health
	// onSet, when set, is told each health read from the store, outside
	// the cache's lock (the dispatcher follows the peers' limits in it).
	onSet func(store.Health)
}

const healthRefresh = 2 * time.Second

func newHealthCache(s Store, log zerolog.Logger) *healthCache {
	return &healthCache{store: s, log: log, m: map[string]store.Health{}}
}

func (h *healthCache) refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	all, err := h.store.AllHealth(ctx)
	if err != nil {
		return err
	}
	m := make(map[string]store.Health, len(all))
	for _, x := range all {
		m[x.EndpointID] = x
	}
	h.mu.Lock()
	h.m = m
	h.mu.Unlock()
	if h.onSet != nil {
		for _, x := range all {
			h.onSet(x)
		}
	}
	return nil
}

// refreshLogged is refresh for the background loop: a failure is logged
// and the cache keeps what it had.
func (h *healthCache) refreshLogged(ctx context.Context) {
	if err := h.refresh(ctx); err != nil && ctx.Err() == nil {
		h.log.Warn().Err(err).Msg("refreshing endpoint health")
	}
}

func (h *healthCache) get(id string) store.Health {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.m[id]
}

func (h *healthCache) set(x store.Health) {
	h.mu.Lock()
	h.m[x.EndpointID] = x
	h.mu.Unlock()
	if h.onSet != nil {
		h.onSet(x)
	}
}

func (h *healthCache) disabled(id string) bool { return h.get(id).Disabled }

// disabledFresh is disabled, but asks the store before answering yes: an
// endpoint enabled a moment ago (through the API, perhaps by another
// process) must not have its recovered deliveries failed again.
func (h *healthCache) disabledFresh(ctx context.Context, id string) bool {
	if !h.disabled(id) {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	x, err := h.store.Health(ctx, id)
	if err != nil {
		return true
	}
	h.set(x)
	return x.Disabled
}

// succeeded records a success, writing only when the endpoint was failing:
// the happy path writes nothing.
func (h *healthCache) succeeded(ctx context.Context, id string) {
	cur := h.get(id)
	if cur.ConsecutiveFailures == 0 && cur.FailingSince == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	x, err := h.store.RecordHealth(ctx, id, true, 0, time.Now())
	if err != nil {
		h.log.Warn().Err(err).Str("endpoint_id", id).Msg("recording endpoint health")
		return
	}
	h.set(x)
}

// failed records n failed first attempts of ep and disables it when it has
// been failing for longer than its disable_after.
func (d *healthCache) failed(ctx context.Context, ep *Endpoint, n int, at time.Time) store.Health {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	x, err := d.store.RecordHealth(ctx, ep.ID, false, n, at)
	if err != nil {
		d.log.Warn().Err(err).Str("endpoint_id", ep.ID).Msg("recording endpoint health")
		return d.get(ep.ID)
	}
	d.set(x)
	return x
}

// failingTooLong reports whether h has been failing for longer than ep allows.
func failingTooLong(ep *Endpoint, h store.Health, now time.Time) bool {
	return h.FailingSince != nil && !h.Disabled && now.Sub(*h.FailingSince) >= ep.DisableAfter
}

// disable turns an endpoint off: its pending deliveries become failed (they
// can be recovered once it is enabled again).
func (d *Dispatcher) disable(ctx context.Context, ep *Endpoint, reason string) {
	if d.health.disabled(ep.ID) {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if err := d.store.Disable(ctx, ep.ID, reason); err != nil {
		d.log.Error().Err(err).Str("endpoint", ep.Name).Msg("disabling endpoint")
		return
	}
	n, err := d.store.FailPending(ctx, ep.ID, reason)
	if err != nil {
		d.log.Error().Err(err).Str("endpoint", ep.Name).Msg("failing the pending deliveries of a disabled endpoint")
	}
	x := d.health.get(ep.ID)
	x.EndpointID, x.Disabled, x.DisabledReason = ep.ID, true, reason
	now := time.Now()
	x.DisabledAt = &now
	d.health.set(x)
	d.obs.Disabled(ep.ID)
	d.log.Warn().Str("endpoint", ep.Name).Str("endpoint_id", ep.ID).Str("reason", reason).Int64("pending_failed", n).
		Msg("endpoint disabled; enable it through the API or CLI, then recover its failed deliveries")
}
