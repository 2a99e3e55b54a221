package relay

import (
	"os"
	"time"

	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/membership"
	"github.com/walhook/walhook/internal/store"
	"github.com/walhook/walhook/internal/version"
)

// newMember is this instance's registration in the state schema
// (docs/architecture.md, "Membership"); its role and load are read from
// the relay at each heartbeat.
func (r *Relay) newMember(opts Options) *membership.Member {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	self := store.Instance{ID: store.NewInstanceID(), Host: host, PID: os.Getpid(), Version: version.Version}
	if r.cfg.Admin != nil {
		self.Listen = r.cfg.Admin.Listen
	}
	// Claims name this instance, so that peers can take them over.
	r.store.SetInstance(self.ID)
	return membership.New(membership.Config{
		Store: r.store, Self: self, Every: opts.MemberEvery, PruneAfter: opts.MemberPruneAfter,
		Role: r.role, Load: r.load, TakeOverAfter: r.longestTimeout, TookOver: r.tookOver, Alive: r.alive,
		Logger: r.log.With().Str("component", "membership").Logger(),
	})
}

// longestTimeout is the longest endpoint timeout of the routing table: an
// instance silent that long (past the dead threshold) makes no attempt any
// more, so its leases are taken over.
func (r *Relay) longestTimeout() time.Duration {
	var longest time.Duration
	if r.dispatcher == nil {
		return time.Minute
	}
	for _, ep := range r.dispatcher.Endpoints() {
		longest = max(longest, ep.Timeout)
	}
	return longest
}

// tookOver counts leases of dead peers released by this instance.
func (r *Relay) tookOver(n int) {
	if r.metrics != nil {
		r.metrics.LeasesTakenOver(n)
	}
}

// role is this instance's role now: the leader holds the replication slot.
func (r *Relay) role() string {
	if r.cfg.Source.Mode == config.ModeOutbox {
		return store.RolePoller
	}
	if ss, ok := r.source.(*slotSource); ok && ss.reader.Status().Streaming {
		return store.RoleLeader
	}
	return store.RoleStandby
}

// load is what the dispatcher has in flight now, over all endpoints.
func (r *Relay) load() store.InstanceLoad {
	var l store.InstanceLoad
	if r.dispatcher == nil {
		return l
	}
	for _, ep := range r.dispatcher.Endpoints() {
		if el, ok := r.dispatcher.Load(ep.ID); ok {
			l.InFlight += el.InFlight
			l.RetriesInFlight += el.Retrying
		}
	}
	return l
}

// InstanceID is this instance's id in the instances list.
func (r *Relay) InstanceID() string { return r.member.ID() }

// alive shares the endpoints' limits among the instances alive: with
// delivery.share = "all" every one of them sends (docs/scaling.md).
func (r *Relay) alive(n int) {
	if r.dispatcher != nil {
		r.dispatcher.SetSenders(n)
	}
}
