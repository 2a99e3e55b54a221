package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/walhook/walhook/internal/admin"
)

// Session lifetimes: a session ends after sessionIdle without a request
// or sessionMax after login, whichever comes first.
const (
	sessionIdle = 8 * time.Hour
	sessionMax  = 24 * time.Hour
	// CookieName is the session cookie.
	CookieName = "walhook_session"
	// CSRFHeader carries the session's CSRF token on state-changing requests.
	CSRFHeader = "X-CSRF-Token"
)

// errSessionEnded refuses a cookie naming no live session.
var errSessionEnded = errors.New("the console session has ended")

// session is one logged-in browser.
type session struct {
	csrf    string
	p       admin.Principal
	created time.Time
	seen    time.Time
}

// sessions are kept in memory, keyed by the SHA-256 of the cookie value:
// a restart logs everyone out.
type sessions struct {
	mu     sync.Mutex
	byHash map[[sha256.Size]byte]*session
	now    func() time.Time
}

func newSessions(now func() time.Time) *sessions {
	return &sessions{byHash: map[[sha256.Size]byte]*session{}, now: now}
}

// randomToken is 32 random bytes, base64url.
func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// start makes a session for p and returns its cookie value and CSRF token.
func (ss *sessions) start(p admin.Principal) (cookie, csrf string) {
	cookie, csrf = randomToken(), randomToken()
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.pruneLocked(now)
	ss.byHash[sha256.Sum256([]byte(cookie))] = &session{csrf: csrf, p: p, created: now, seen: now}
	return cookie, csrf
}

// get returns the live session of a cookie value, marking it seen.
func (ss *sessions) get(cookie string) (session, bool) {
	key := sha256.Sum256([]byte(cookie))
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.byHash[key]
	if !ok {
		return session{}, false
	}
	if now.Sub(s.seen) > sessionIdle || now.Sub(s.created) > sessionMax {
		delete(ss.byHash, key)
		return session{}, false
	}
	s.seen = now
	return *s, true
}

// alive reports whether the session of a cookie value is still live,
// without marking it seen: an open stream does not keep a session from
// its idle end.
func (ss *sessions) alive(cookie string) bool {
	key := sha256.Sum256([]byte(cookie))
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.byHash[key]
	if !ok {
		return false
	}
	if now.Sub(s.seen) > sessionIdle || now.Sub(s.created) > sessionMax {
		delete(ss.byHash, key)
		return false
	}
	return true
}

// end removes a session.
func (ss *sessions) end(cookie string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.byHash, sha256.Sum256([]byte(cookie)))
}

// pruneLocked drops ended sessions.
func (ss *sessions) pruneLocked(now time.Time) {
	for k, s := range ss.byHash {
		if now.Sub(s.seen) > sessionIdle || now.Sub(s.created) > sessionMax {
			delete(ss.byHash, k)
		}
	}
}

// safeMethod reports whether a method changes nothing (no CSRF token needed).
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// checkCSRF requires, on a state-changing request, an Origin (when the
// browser names one) equal to the console's own and the session's CSRF
// token in the X-CSRF-Token header.
func checkCSRF(r *http.Request, s session, front *admin.Frontend) error {
	if safeMethod(r.Method) {
		return nil
	}
	if err := front.CheckOrigin(r); err != nil {
		return err
	}
	given := r.Header.Get(CSRFHeader)
	if given == "" || subtle.ConstantTimeCompare([]byte(given), []byte(s.csrf)) != 1 {
		return admin.ErrCSRF
	}
	return nil
}
