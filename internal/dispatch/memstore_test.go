package dispatch

import (
	"cmp"
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walhook/walhook/internal/store"
)

// memStore is an in-memory model of the retry store for unit tests: the
// same rules as the Postgres one (a key's head in commit order is the only
// claimable delivery of the key, stored rows are never overwritten by a
// write, attempts are logged once), with faults that can be switched on:
// each call may be slow or fail.
type memStore struct {
	mu       sync.Mutex
	rows     map[string]*store.Delivery
	seq      int64
	attempts map[attemptID]store.Attempt
	failures map[string]store.FailedEvaluation
	health   map[string]store.Health
	lease    time.Duration // the lease it gives, whatever is asked (tests run fast)

	faults   sync.Mutex // guards rng and the fault settings
	rng      *rand.Rand
	errRate  float64
	maxDelay time.Duration
	// blockWrites, when not nil, holds every WriteBatch until it is closed.
	blockWrites chan struct{}
	// postponed counts Postpone calls (claimed deliveries handed back).
	postponed atomic.Int64
	// published counts PublishLimits calls by endpoint id (under mu).
	published map[string]int
}

type attemptID struct {
	delivery string
	number   int
	at       int64
}

var errInjected = errors.New("injected store failure")

func newMemStore(seed uint64) *memStore {
	return &memStore{
		rows: map[string]*store.Delivery{}, attempts: map[attemptID]store.Attempt{},
		failures: map[string]store.FailedEvaluation{}, health: map[string]store.Health{},
		lease: time.Second, rng: rand.New(rand.NewPCG(seed, seed^0x5eed)),
	}
}

// setFaults makes each call fail with probability errRate after a delay up
// to maxDelay; zero values turn faults off.
func (m *memStore) setFaults(errRate float64, maxDelay time.Duration) {
	m.faults.Lock()
	m.errRate, m.maxDelay = errRate, maxDelay
	m.faults.Unlock()
}

// fault sleeps and fails as the fault settings say, honouring ctx.
func (m *memStore) fault(ctx context.Context) error {
	m.faults.Lock()
	var delay time.Duration
	if m.maxDelay > 0 {
		delay = time.Duration(m.rng.Int64N(int64(m.maxDelay)))
	}
	fail := m.errRate > 0 && m.rng.Float64() < m.errRate
	m.faults.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	if fail {
		return errInjected
	}
	return ctx.Err()
}

func (m *memStore) WriteBatch(ctx context.Context, b store.Batch) ([]store.Delivery, error) {
	m.faults.Lock()
	block := m.blockWrites
	m.faults.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err := m.fault(ctx); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	claimed := m.insertLocked(b.Deliveries)
	for _, a := range b.Attempts {
		m.attempts[attemptID{a.DeliveryID, a.Number, a.AttemptedAt.UnixMicro()}] = a
	}
	for _, f := range b.Failures {
		m.failures[f.Rule+"/"+string(rune(f.Position))+"/"+f.Error] = f
	}
	return claimed, nil
}

// insertLocked stores the deliveries not stored yet and returns those of
// them written with Claim (leased until their NextAttemptAt).
func (m *memStore) insertLocked(ds []store.Delivery) []store.Delivery {
	var claimed []store.Delivery
	for _, d := range ds {
		if _, ok := m.rows[d.ID]; ok {
			continue
		}
		m.seq++
		cp := d
		cp.Seq = m.seq
		if cp.Status == "" {
			cp.Status = store.StatusPending
		}
		if cp.NextAttemptAt.IsZero() {
			cp.NextAttemptAt = time.Now()
		}
		cp.Claim = false
		m.rows[d.ID] = &cp
		if d.Claim {
			claimed = append(claimed, cp)
		}
	}
	return claimed
}

func (m *memStore) LogAttempts(ctx context.Context, ds []store.Delivery, as []store.Attempt) error {
	if err := m.fault(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, d := range ds {
		if d.Status == "" {
			d.Status = store.StatusDelivered
		}
		m.insertLocked([]store.Delivery{d})
	}
	for _, a := range as {
		m.attempts[attemptID{a.DeliveryID, a.Number, a.AttemptedAt.UnixMicro()}] = a
	}
	return nil
}

func commitOrder(a, b *store.Delivery) int {
	return cmp.Or(cmp.Compare(a.CommitLSN, b.CommitLSN), cmp.Compare(a.Position, b.Position), cmp.Compare(a.Seq, b.Seq))
}

// headsLocked maps each endpoint's keys to their first pending delivery
// in commit order.
func (m *memStore) headsLocked() map[[2]string]*store.Delivery {
	heads := map[[2]string]*store.Delivery{}
	for _, d := range m.rows {
		if d.Status != store.StatusPending || d.Key == "" {
			continue
		}
		k := [2]string{d.EndpointID, d.Key}
		if h := heads[k]; h == nil || commitOrder(d, h) < 0 {
			heads[k] = d
		}
	}
	return heads
}

func (m *memStore) ClaimDue(ctx context.Context, limit int, _ time.Duration, exclude []string) ([]store.Delivery, error) {
	if err := m.fault(ctx); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	heads := m.headsLocked()
	var due []*store.Delivery
	for _, d := range m.rows {
		if d.Status != store.StatusPending || d.NextAttemptAt.After(now) || slices.Contains(exclude, d.EndpointID) {
			continue
		}
		if d.Key != "" && heads[[2]string{d.EndpointID, d.Key}] != d {
			continue // held back behind the head of its key
		}
		due = append(due, d)
	}
	slices.SortFunc(due, func(a, b *store.Delivery) int { return a.NextAttemptAt.Compare(b.NextAttemptAt) })
	var out []store.Delivery
	for _, d := range due[:min(len(due), limit)] {
		d.NextAttemptAt = now.Add(m.lease)
		out = append(out, *d)
	}
	return out, nil
}

func (m *memStore) CompleteAll(ctx context.Context, cs []store.Completion) (map[string]store.Health, error) {
	if err := m.fault(ctx); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	hs := map[string]store.Health{}
	for _, c := range cs {
		h := m.completeLocked(c.Delivery, c.Attempt, c.Outcome)
		hs[h.EndpointID] = h
	}
	return hs, nil
}

func (m *memStore) completeLocked(d store.Delivery, a store.Attempt, out store.Outcome) store.Health {
	row, ok := m.rows[d.ID]
	if !ok {
		m.insertLocked([]store.Delivery{d})
		row = m.rows[d.ID]
	}
	if row.Status != store.StatusDelivered || out.Status == store.StatusDelivered {
		row.Status = out.Status
		row.Attempts++
		row.NextAttemptAt = out.NextAttemptAt
		if row.NextAttemptAt.IsZero() {
			row.NextAttemptAt = time.Now()
		}
		row.LastStatus, row.LastError = a.StatusCode, a.Error
	}
	if a.Number > 0 {
		m.attempts[attemptID{a.DeliveryID, a.Number, a.AttemptedAt.UnixMicro()}] = a
	}
	return m.recordHealthLocked(d.EndpointID, out.Status == store.StatusDelivered, 1, a.AttemptedAt)
}

func (m *memStore) Postpone(ctx context.Context, id string, until time.Time) error {
	m.postponed.Add(1)
	if err := m.fault(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if d, ok := m.rows[id]; ok && d.Status == store.StatusPending {
		d.NextAttemptAt = until
	}
	return nil
}

func (m *memStore) PendingKeys(ctx context.Context, endpointID string, keys []string) ([]string, error) {
	if err := m.fault(ctx); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, d := range m.rows {
		if d.Status != store.StatusPending || d.EndpointID != endpointID || d.Key == "" || seen[d.Key] {
			continue
		}
		if keys != nil && !slices.Contains(keys, d.Key) {
			continue
		}
		seen[d.Key] = true
		out = append(out, d.Key)
	}
	return out, nil
}

func (m *memStore) FirstOfKey(ctx context.Context, d store.Delivery) (bool, error) {
	if err := m.fault(ctx); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.rows {
		if e.Status == store.StatusPending && e.EndpointID == d.EndpointID && e.Key == d.Key && commitOrder(e, &d) < 0 {
			return false, nil
		}
	}
	return true, nil
}

func (m *memStore) AllHealth(ctx context.Context) ([]store.Health, error) {
	if err := m.fault(ctx); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.Health
	for _, h := range m.health {
		out = append(out, h)
	}
	return out, nil
}

func (m *memStore) Health(ctx context.Context, id string) (store.Health, error) {
	if err := m.fault(ctx); err != nil {
		return store.Health{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.health[id], nil
}

func (m *memStore) RecordHealth(ctx context.Context, id string, ok bool, failures int, at time.Time) (store.Health, error) {
	if err := m.fault(ctx); err != nil {
		return store.Health{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.recordHealthLocked(id, ok, failures, at), nil
}

func (m *memStore) recordHealthLocked(id string, ok bool, failures int, at time.Time) store.Health {
	h := m.health[id]
	h.EndpointID = id
	if ok {
		h.ConsecutiveFailures, h.FailingSince = 0, nil
	} else {
		h.ConsecutiveFailures += failures
		if h.FailingSince == nil {
			h.FailingSince = &at
		}
	}
	m.health[id] = h
	return h
}

func (m *memStore) Disable(ctx context.Context, id, reason string) error {
	if err := m.fault(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	h := m.health[id]
	h.EndpointID, h.Disabled, h.DisabledReason = id, true, reason
	m.health[id] = h
	return nil
}

func (m *memStore) FailPending(ctx context.Context, id, reason string) (int64, error) {
	if err := m.fault(ctx); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for _, d := range m.rows {
		if d.EndpointID == id && d.Status == store.StatusPending {
			d.Status, d.LastError = store.StatusFailed, reason
			n++
		}
	}
	return n, nil
}

// has reports whether a delivery with id is stored.
func (m *memStore) has(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.rows[id]
	return ok
}

// counts returns how many stored deliveries have each status.
func (m *memStore) counts() map[store.Status]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[store.Status]int{}
	for _, d := range m.rows {
		out[d.Status]++
	}
	return out
}

func (m *memStore) ClaimBatchMates(ctx context.Context, ids []string, _ time.Duration) (map[string]string, []store.Delivery, error) {
	if err := m.fault(ctx); err != nil {
		return nil, nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	batchOf := map[string]string{}
	batches := map[string]bool{}
	for _, id := range ids {
		if d := m.rows[id]; d != nil && d.BatchID != "" {
			batchOf[id], batches[d.BatchID] = d.BatchID, true
		}
	}
	now := time.Now()
	var mates []store.Delivery
	for _, d := range m.rows {
		if batches[d.BatchID] && d.Status == store.StatusPending && !d.NextAttemptAt.After(now) && !slices.Contains(ids, d.ID) {
			d.NextAttemptAt = now.Add(m.lease)
			mates = append(mates, *d)
		}
	}
	slices.SortFunc(mates, func(a, b store.Delivery) int { return cmp.Compare(a.Seq, b.Seq) })
	return batchOf, mates, nil
}

// PublishLimits keeps a pause and limits on the endpoint's health, as the
// Postgres store does (claims here do not skip a paused endpoint).
func (m *memStore) PublishLimits(ctx context.Context, id string, u store.LimitsUpdate) error {
	if err := m.fault(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.published == nil {
		m.published = map[string]int{}
	}
	m.published[id]++
	h := m.health[id]
	h.EndpointID = id
	now := time.Now()
	if until := now.Add(u.Pause); u.Pause > 0 && until.After(h.Limits.PausedUntil) {
		h.Limits.PausedUntil = until
	}
	if u.Concurrency > 0 || u.Rate > 0 {
		h.Limits.Concurrency, h.Limits.Rate, h.Limits.LimitedAt, h.Limits.Published = u.Concurrency, u.Rate, now, &now
		h.Limits.Own = true // one process: every publication is its own
	}
	m.health[id] = h
	return nil
}
