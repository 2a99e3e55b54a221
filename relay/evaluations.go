package relay

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/rs/zerolog"

	"github.com/walhook/walhook/internal/dispatch"
	"github.com/walhook/walhook/internal/event"
	"github.com/walhook/walhook/internal/outboxevents"
	"github.com/walhook/walhook/internal/rules"
	"github.com/walhook/walhook/internal/store"
)

// Replays of failed evaluations (docs/operations.md, "Failed
// evaluations"). Whoever asks for a replay (walhook evaluations replay,
// POST /v1/evaluations/…/replay, the console) only marks the failure in the
// state store; every running walhook claims requested replays there with
// FOR UPDATE SKIP LOCKED and a lease, like retries, so the CLI needs no
// running instance to talk to, any instance of several may do the work,
// and a replay claimed by an instance that died is claimed again when its
// lease runs out. The relay's replayer re-evaluates each claimed change
// with the running config's rule (the failed one only), or renders again
// the event whose endpoint body failed, and hands the events to Dispatch
// under the ids the original evaluation gave or would have given them
// (event.Failure.EventID), so receivers de-duplicate a replay that also
// arrived the first time. A replay is marked replayed once its batch is
// settled (delivered, or durably in the retry store); a re-evaluation that
// fails again records the failure again, with the new error.
const (
	replayBatch = 500
	replayLease = 2 * time.Minute
	replayPoll  = 5 * time.Second
)

// replayer is the relay's loop that replays failed evaluations.
type replayer struct {
	store *store.Store
	rules *rules.Rules
	// outbox re-evaluates the outbox rows of failures of rule "outbox"
	// (nil without an outbox table).
	outbox   *outboxevents.Source
	dispatch func(context.Context, dispatch.Batch) error
	token    string // this instance's claims
	wake     chan struct{}
	log      zerolog.Logger
}

func newReplayer(st *store.Store, rs *rules.Rules, d *dispatch.Dispatcher, log zerolog.Logger) *replayer {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &replayer{store: st, rules: rs, dispatch: d.Dispatch, token: "rpl_" + hex.EncodeToString(b[:]),
		wake: make(chan struct{}, 1), log: log.With().Str("component", "replay").Logger()}
}

// Wake makes the loop look for requested replays now; it never blocks.
func (p *replayer) Wake() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Run replays requested failed evaluations until ctx ends: at once when
// woken, else every replayPoll.
func (p *replayer) Run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-p.wake:
		}
		for ctx.Err() == nil {
			n, err := p.replayOnce(ctx)
			if err != nil && ctx.Err() == nil {
				p.log.Warn().Err(err).Stringer("retry_in", replayPoll).Msg("replaying failed evaluations")
			}
			if err != nil || n < replayBatch {
				break
			}
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(replayPoll)
	}
}

// replayOnce claims up to replayBatch replays, dispatches them and records
// their outcomes once their batches are settled. It returns how many it
// claimed.
func (p *replayer) replayOnce(ctx context.Context) (int, error) {
	claims, err := p.store.ClaimReplays(ctx, p.token, replayBatch, replayLease)
	if err != nil || len(claims) == 0 {
		return 0, err
	}
	settled := make(chan int64, len(claims)) // room for every callback: they never block
	waiting := map[int64]int{}               // dispatched, not settled yet: id → events
	var outs []store.ReplayOutcome
	var handBack []int64 // not dispatched (stopping) or not settled in time
	var dispatchErr error
	for i, c := range claims {
		r, err := event.DecodeReplay(c.Replay)
		if err != nil {
			outs = append(outs, store.ReplayOutcome{ID: c.ID, Error: "replay: " + err.Error()})
			continue
		}
		b := p.batch(c.Rule, r)
		id := c.ID
		b.Settled = func() { settled <- id }
		if dispatchErr = p.dispatch(ctx, b); dispatchErr != nil {
			for _, rest := range claims[i:] {
				handBack = append(handBack, rest.ID)
			}
			break
		}
		waiting[id] = len(b.Events)
		p.log.Info().Int64("evaluation", id).Str("rule", c.Rule).Int("events", len(b.Events)).Msg("replaying a failed evaluation")
	}
	// Settling waits for first attempts (or the store); a replay not settled
	// well before its lease ends is handed back, to be replayed again.
	wait := time.NewTimer(replayLease - 15*time.Second)
	defer wait.Stop()
collect:
	for len(waiting) > 0 {
		select {
		case id := <-settled:
			outs = append(outs, store.ReplayOutcome{ID: id, Events: waiting[id]})
			delete(waiting, id)
		case <-ctx.Done():
			break collect
		case <-wait.C:
			break collect
		}
	}
	for id := range waiting {
		handBack = append(handBack, id)
	}
	// Outcomes and hand-backs are written even while stopping, briefly.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := p.store.FinishReplays(wctx, p.token, outs); err != nil {
		return len(claims), err
	}
	if err := p.store.ReleaseReplays(wctx, p.token, handBack); err != nil {
		return len(claims), err
	}
	return len(claims), dispatchErr
}

// batch is what a replay dispatches: the event whose body failed (to its
// endpoint only), or what the failed rule makes of the change now, under
// the ids of the original evaluation.
func (p *replayer) batch(rule string, r event.Replay) dispatch.Batch {
	if c := r.Change; rule == "outbox" && c != nil && p.outbox != nil && c.Schema+"."+c.Table == p.outbox.Table() {
		evs, fs := p.outbox.Replay(c, r.EventID)
		return dispatch.Batch{Events: evs, Failures: fs, XID: c.XID, Unrouted: p.outbox.Unrouted}
	}
	if r.Event != nil {
		ev := *r.Event
		ev.Endpoint = r.Endpoint
		return dispatch.Batch{Events: []event.Event{ev}}
	}
	if r.Change == nil {
		return dispatch.Batch{}
	}
	evs, fs := p.rules.EvaluateRule(r.Change, r.EventType, nil)
	for i := range evs {
		if r.EventID != "" {
			evs[i].ID = r.EventID
		}
		if r.Endpoint != "" {
			evs[i].Endpoint = r.Endpoint
		}
	}
	for i := range fs {
		if r.EventID != "" {
			fs[i].EventID = r.EventID
		}
		fs[i].Endpoint = r.Endpoint
	}
	return dispatch.Batch{Events: evs, Failures: fs, XID: r.Change.XID}
}

// WakeReplays makes the relay look for requested replays now (the admin
// API calls it after a request; the CLI's requests wait for the next poll).
func (r *Relay) WakeReplays() { r.replays.Wake() }
