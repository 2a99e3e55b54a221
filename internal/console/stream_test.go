package console_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/walhook/walhook/internal/admin"
	"github.com/walhook/walhook/internal/console"
	"github.com/walhook/walhook/internal/store"
	"github.com/walhook/walhook/testenv"
)

// TestTailScopedToTenant: a tenant's live tail streams attempts to its own
// webhooks only; attempts to another tenant's webhook or to a config
// endpoint, even of the tenant's events, are not sent. The attempts are
// handed to the tail in order, so the first one the stream shows tells
// that the earlier ones were left out.
func TestTailScopedToTenant(t *testing.T) {
	t.Parallel()
	db := testenv.NewEmptyDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, db.Pool, "walhook")
	if err != nil {
		t.Fatal(err)
	}
	acme, err := st.CreateWebhook(ctx, store.Webhook{URL: "http://127.0.0.1:1/a", Events: []string{"*"}, Tenant: "acme", Active: true})
	if err != nil {
		t.Fatal(err)
	}
	globex, err := st.CreateWebhook(ctx, store.Webhook{URL: "http://127.0.0.1:1/g", Events: []string{"*"}, Tenant: "globex", Active: true})
	if err != nil {
		t.Fatal(err)
	}
	_, token, err := st.CreateAPIToken(ctx, "acme", "")
	if err != nil {
		t.Fatal(err)
	}
	tail := console.NewTail()
	c := console.New(console.Options{Auth: admin.NewAuthenticator([]string{adminToken}, st), Store: st, Tail: tail, Logger: zerolog.New(io.Discard)})
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	t.Cleanup(tail.Close) // ends the stream before the server closes

	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	res, err := client.Post(srv.URL+"/ui/api/login", "application/json", strings.NewReader(`{"token": "`+token+`"}`))
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("login: %v %v", err, res)
	}
	res.Body.Close()
	res, err = client.Get(srv.URL + "/ui/api/tail")
	if err != nil || res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("tail: %v %+v", err, res)
	}
	defer res.Body.Close()
	lines := bufio.NewScanner(res.Body)
	// The stream's first comment says it is subscribed.
	for lines.Scan() && !strings.HasPrefix(lines.Text(), ": walhook live tail") {
	}

	at := time.Now()
	tail.Attempted(store.Attempt{EventID: "evt_1", EventType: "contact.created", EndpointID: globex.ID, Number: 1, StatusCode: 200, AttemptedAt: at}, "acme")
	tail.Attempted(store.Attempt{EventID: "evt_1", EventType: "contact.created", EndpointID: "cfg:crm", Number: 1, StatusCode: 200, AttemptedAt: at}, "acme")
	tail.Attempted(store.Attempt{EventID: "evt_2", EventType: "contact.created", EndpointID: acme.ID, Number: 1, StatusCode: 200, AttemptedAt: at}, "globex")
	tail.Attempted(store.Attempt{EventID: "evt_3", EventType: "contact.created", EndpointID: acme.ID, Number: 1, StatusCode: 200, AttemptedAt: at}, "acme")
	for lines.Scan() {
		data, ok := strings.CutPrefix(lines.Text(), "data: ")
		if !ok {
			continue
		}
		var ev console.TailEvent
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatalf("tail data %q: %v", data, err)
		}
		if ev.EndpointID != acme.ID || ev.EventID != "evt_3" {
			t.Fatalf("acme's tail shows %+v first, want evt_3 to its own webhook", ev)
		}
		return
	}
	t.Fatalf("the stream ended: %v", lines.Err())
}

// TestTailEndsWithSession: an open live tail ends, with an "ended" event
// saying why, once its session ends: by logout, or for a tenant session by
// the revocation of its token. The stream is read until it closes; the
// deadline only keeps a broken build from hanging.
func TestTailEndsWithSession(t *testing.T) {
	t.Parallel()
	db := testenv.NewEmptyDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, db.Pool, "walhook")
	if err != nil {
		t.Fatal(err)
	}
	tok, token, err := st.CreateAPIToken(ctx, "acme", "")
	if err != nil {
		t.Fatal(err)
	}
	tail := console.NewTail()
	c := console.New(console.Options{Auth: admin.NewAuthenticator([]string{adminToken}, st), Store: st, Tail: tail, Logger: zerolog.New(io.Discard)})
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	t.Cleanup(tail.Close)

	// open logs in with tok and opens the tail; it returns the client, the
	// CSRF token and the stream's lines.
	open := func(tok string) (*http.Client, string, *bufio.Scanner, io.Closer) {
		jar, _ := cookiejar.New(nil)
		client := &http.Client{Jar: jar}
		res, err := client.Post(srv.URL+"/ui/api/login", "application/json", strings.NewReader(`{"token": "`+tok+`"}`))
		if err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("login: %v %v", err, res)
		}
		var s struct {
			CSRF string `json:"csrf_token"`
		}
		_ = json.NewDecoder(res.Body).Decode(&s)
		res.Body.Close()
		res, err = client.Get(srv.URL + "/ui/api/tail")
		if err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("tail: %v %+v", err, res)
		}
		lines := bufio.NewScanner(res.Body)
		for lines.Scan() && !strings.HasPrefix(lines.Text(), ": walhook live tail") {
		}
		return client, s.CSRF, lines, res.Body
	}
	// ended reads the stream to its end and returns the reason it gave.
	ended := func(lines *bufio.Scanner) string {
		why, event := "", ""
		for lines.Scan() {
			if v, ok := strings.CutPrefix(lines.Text(), "event: "); ok {
				event = v
			}
			if v, ok := strings.CutPrefix(lines.Text(), "data: "); ok && event == "ended" {
				why = v
			}
		}
		return why
	}

	t.Run("logout", func(t *testing.T) {
		client, csrf, lines, body := open(adminToken)
		defer body.Close()
		req, _ := http.NewRequest("POST", srv.URL+"/ui/api/logout", nil)
		req.Header.Set(console.CSRFHeader, csrf)
		res, err := client.Do(req)
		if err != nil || res.StatusCode != http.StatusNoContent {
			t.Fatalf("logout: %v %v", err, res)
		}
		res.Body.Close()
		start := time.Now()
		if why := ended(lines); why != "the console session has ended" {
			t.Errorf("the stream ended saying %q", why)
		}
		t.Logf("the stream ended %v after the logout", time.Since(start).Round(time.Millisecond))
	})
	t.Run("revocation", func(t *testing.T) {
		client, _, lines, body := open(token)
		defer body.Close()
		if _, err := st.RevokeAPIToken(ctx, tok.ID); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if why := ended(lines); why != "the tenant token of this session was revoked" {
			t.Errorf("the stream ended saying %q", why)
		}
		t.Logf("the stream ended %v after the revocation", time.Since(start).Round(time.Millisecond))
		res, err := client.Get(srv.URL + "/ui/api/tail")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("reopening the tail after revocation: %d", res.StatusCode)
		}
	})
}
