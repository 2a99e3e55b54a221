package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/walhook/walhook/internal/admin"
)

// Live tail stream settings.
const (
	tailBuffer    = 256              // events a slow browser may fall behind before missing some
	tailKeepAlive = 15 * time.Second // comment line that keeps proxies from closing the stream
	tailWrite     = 10 * time.Second // deadline of each write
	// tailRecheck is how often an open stream checks that its session
	// still stands (logout, expiry, a revoked tenant token).
	tailRecheck = time.Second
)

// sessionEnded says why a live session has ended since its stream
// opened, or "" while it stands. A tenant session's token is read from
// the store, so a revocation by any instance ends it.
func (c *Console) sessionEnded(r *http.Request, p admin.Principal) string {
	ck, err := r.Cookie(CookieName)
	if err != nil || !c.sessions.alive(ck.Value) {
		return "the console session has ended"
	}
	if !p.Scoped() || c.opts.Store == nil {
		return ""
	}
	active, err := c.opts.Store.APITokenActive(r.Context(), p.TokenID)
	if err != nil {
		c.log.Warn().Err(err).Msg("checking the tenant token of a live tail")
		return "" // the next check tries again; a database hiccup does not log anyone out
	}
	if !active {
		c.sessions.end(ck.Value)
		return "the tenant token of this session was revoked"
	}
	return ""
}

// tail streams attempts as server-sent events ("attempt" events with a
// TailEvent, "dropped" events when the browser fell behind) until the
// browser leaves, the tail closes or the session ends (an "ended" event
// with the reason, within tailRecheck of logout, expiry or revocation). A tenant session sees attempts to its
// own webhooks only; an admin may ask for one tenant's events with
// ?tenant=.
func (c *Console) tail(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	rc := http.NewResponseController(w)
	sub := c.opts.Tail.Subscribe(tailBuffer)
	defer sub.Close()
	var own map[string]bool
	ownAt := time.Time{}
	if p.Scoped() {
		var err error
		if own, err = c.tenantEndpoints(r.Context(), p.Tenant); err != nil {
			c.log.Error().Err(err).Msg("listing tenant endpoints")
			writeJSON(w, http.StatusInternalServerError, errorBody(admin.CodeInternal, "listing endpoints failed; see the walhook log"))
			return
		}
		ownAt = time.Now()
	}
	previewTenant, preview := r.URL.Query().Get("tenant"), !p.Scoped() && r.URL.Query().Has("tenant")
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	write := func(s string) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(tailWrite))
		if _, err := fmt.Fprint(w, s); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write("retry: 2000\n: walhook live tail\n\n") {
		return
	}
	keepAlive := time.NewTicker(tailKeepAlive)
	defer keepAlive.Stop()
	recheck := time.NewTicker(tailRecheck)
	defer recheck.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-recheck.C:
			if why := c.sessionEnded(r, p); why != "" {
				write("event: ended\ndata: " + why + "\n\n")
				return
			}
		case <-keepAlive.C:
			if n := sub.Dropped(); n > 0 {
				if !write(fmt.Sprintf("event: dropped\ndata: %d\n\n", n)) {
					return
				}
			} else if !write(": keep-alive\n\n") {
				return
			}
		case ev, ok := <-sub.C:
			if !ok {
				return
			}
			if preview && ev.Tenant != previewTenant {
				continue
			}
			if p.Scoped() {
				if ev.Tenant != p.Tenant || !strings.HasPrefix(ev.EndpointID, "ep_") {
					continue
				}
				if !own[ev.EndpointID] && time.Since(ownAt) > time.Second {
					// A webhook created since the stream began, perhaps.
					if fresh, err := c.tenantEndpoints(r.Context(), p.Tenant); err == nil {
						own, ownAt = fresh, time.Now()
					}
				}
				if !own[ev.EndpointID] {
					continue
				}
			}
			b, _ := json.Marshal(ev) // a TailEvent always marshals
			if !write("event: attempt\ndata: " + string(b) + "\n\n") {
				return
			}
		}
	}
}
