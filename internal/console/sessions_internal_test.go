package console

import (
	"testing"
	"time"

	"github.com/walhook/walhook/internal/admin"
)

// TestSessionAliveEnds: alive follows the idle and absolute ends of a
// session and does not itself keep the session from idling.
func TestSessionAliveEnds(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ss := newSessions(func() time.Time { return now })
	cookie, _ := ss.start(admin.Principal{})
	for i := 0; i < 10; i++ {
		now = now.Add(sessionIdle / 10)
		if !ss.alive(cookie) {
			t.Fatalf("the session ended %v after login", sessionIdle/10*time.Duration(i+1))
		}
	}
	now = now.Add(time.Second)
	if ss.alive(cookie) {
		t.Fatal("a session checked only by alive outlived its idle end")
	}

	cookie, _ = ss.start(admin.Principal{})
	for now2 := now.Add(sessionMax); now.Before(now2); {
		now = now.Add(time.Hour)
		if _, ok := ss.get(cookie); !ok && now.Before(now2) {
			t.Fatalf("a used session ended before its absolute end")
		}
	}
	now = now.Add(time.Second)
	if ss.alive(cookie) {
		t.Fatal("a session outlived its absolute end")
	}
}
