package admin

import (
	"net/http"
	"time"

	"github.com/walhook/walhook/internal/store"
)

// InstanceView is an instance as GET /v1/instances and `walhook status`
// show it.
type InstanceView struct {
	ID      string `json:"id"`
	Host    string `json:"host"`
	PID     int    `json:"pid"`
	Version string `json:"version"`
	Listen  string `json:"listen,omitempty"`
	Role    string `json:"role"`
	// State is "alive" or "dead" (no heartbeat for 3 intervals and 5 s).
	State               string    `json:"state"`
	StartedAt           time.Time `json:"started_at"`
	HeartbeatAt         time.Time `json:"heartbeat_at"`
	HeartbeatAgeSeconds float64   `json:"heartbeat_age_seconds"`
	HeartbeatEvery      float64   `json:"heartbeat_every_seconds"`
	InFlight            int       `json:"in_flight"`
	RetriesInFlight     int       `json:"retries_in_flight"`
	AttemptsPerSecond   float64   `json:"attempts_per_second"`
	FailuresPerSecond   float64   `json:"failures_per_second"`
}

// ViewInstance shows in.
func ViewInstance(in store.Instance) InstanceView {
	state := "dead"
	if in.Alive {
		state = "alive"
	}
	return InstanceView{
		ID: in.ID, Host: in.Host, PID: in.PID, Version: in.Version, Listen: in.Listen, Role: in.Role, State: state,
		StartedAt: in.StartedAt, HeartbeatAt: in.HeartbeatAt, HeartbeatAgeSeconds: in.Silent.Seconds(),
		HeartbeatEvery: in.HeartbeatEvery.Seconds(), InFlight: in.Load.InFlight, RetriesInFlight: in.Load.RetriesInFlight,
		AttemptsPerSecond: in.Load.AttemptsPerSecond, FailuresPerSecond: in.Load.FailuresPerSecond,
	}
}

// listInstances answers GET /v1/instances: the walhook instances
// registered in the state schema, alive ones first, the leader first.
func (s *server) listInstances(w http.ResponseWriter, r *http.Request) *apiError {
	ins, err := s.opts.Store.Instances(r.Context())
	if err != nil {
		return s.internal(r, "listing instances", err)
	}
	out := make([]InstanceView, len(ins))
	for i, in := range ins {
		out[i] = ViewInstance(in)
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": out})
	return nil
}
