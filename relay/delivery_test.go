package relay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/walhook/walhook/internal/receiver"
	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/internal/store"
	"github.com/walhook/walhook/internal/testkit"
	"github.com/walhook/walhook/testenv"
)

func endpoint(name, url, secret, extra string) string {
	return fmt.Sprintf(`
endpoint %q {
  url     = %q
  events  = ["*"]
  secret  = %q
  retry {
    schedule = ["50ms", "100ms", "100ms", "100ms", "100ms"]
  }
  %s
}`, name, url, secret, extra)
}

// TestDeliversSignedEventsMatchingRows: rows written by a plain SQL client
// arrive as the configured events, signed so that the official Standard
// Webhooks library verifies them, with values exactly as stored.
func TestDeliversSignedEventsMatchingRows(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	secret := signing.GenerateSecret()
	rec := receiver.New(receiver.Options{Secrets: []string{secret}})
	srv := serve(t, rec)
	start(t, db, endpoint("app", srv.URL, secret, ""))

	ctx := context.Background()
	var contactID, dealID int64
	var createdAt time.Time
	if err := db.Pool.QueryRow(ctx, `INSERT INTO contacts (organization_id, first_name, last_name, email)
		VALUES (7, 'Ada', 'Lovelace', 'ada@example.com') RETURNING id, created_at`).Scan(&contactID, &createdAt); err != nil {
		t.Fatal(err)
	}
	if err := db.Pool.QueryRow(ctx, `INSERT INTO deals (organization_id, contact_id, title, amount, metadata)
		VALUES (7, $1, 'Engines', 1234567890.12, '{"plan": "pro", "seats": 12, "ratio": 0.125, "tags": ["a", "b"], "none": null}')
		RETURNING id`, contactID).Scan(&dealID); err != nil {
		t.Fatal(err)
	}
	db.Exec(t, `UPDATE deals SET stage = 'won' WHERE id = $1`, dealID)

	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := rec.WaitFor(wctx, 3); err != nil {
		t.Fatalf("waiting for 3 deliveries: %v (got %d)", err, len(rec.Received()))
	}
	got := rec.Received()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	byType := map[string]map[string]any{}
	for _, r := range got {
		if err := wh.Verify(r.Body, r.Header); err != nil {
			t.Errorf("official library rejects %s: %v", r.Type, err)
		}
		if !r.Verified {
			t.Errorf("receiver did not verify %s: %v", r.Type, r.VerifyErr)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type = %q", ct)
		}
		var body map[string]any
		dec := json.NewDecoder(bytes.NewReader(r.Body))
		dec.UseNumber()
		if err := dec.Decode(&body); err != nil {
			t.Fatalf("body of %s is not JSON: %v\n%s", r.Type, err, r.Body)
		}
		if body["id"] != r.Header.Get("webhook-id") {
			t.Errorf("body id %v differs from webhook-id %q", body["id"], r.Header.Get("webhook-id"))
		}
		byType[body["type"].(string)] = body
	}
	for _, typ := range []string{"contact.created", "deal.created", "deal.stage.changed"} {
		if byType[typ] == nil {
			t.Fatalf("no %s among %d deliveries", typ, len(got))
		}
	}
	contact := byType["contact.created"]["data"].(map[string]any)
	if contact["id"] != json.Number(fmt.Sprint(contactID)) || contact["first_name"] != "Ada" || contact["organization_id"] != json.Number("7") {
		t.Errorf("contact data = %v", contact)
	}
	ts, err := time.Parse(time.RFC3339Nano, contact["created_at"].(string))
	if err != nil || !ts.Equal(createdAt) {
		t.Errorf("created_at = %v (%v), want %v", contact["created_at"], err, createdAt)
	}
	deal := byType["deal.created"]["data"].(map[string]any)
	if deal["amount"] != json.Number("1234567890.12") {
		t.Errorf("amount = %#v, want the exact numeric 1234567890.12", deal["amount"])
	}
	meta, ok := deal["metadata"].(map[string]any)
	if !ok || meta["plan"] != "pro" || meta["seats"] != json.Number("12") || meta["ratio"] != json.Number("0.125") || meta["none"] != nil {
		t.Errorf("metadata = %#v, want the jsonb object embedded", deal["metadata"])
	}
	changed := byType["deal.stage.changed"]["data"].(map[string]any)
	if changed["stage"] != "won" || changed["previous_stage"] != "lead" {
		t.Errorf("stage change data = %v", changed)
	}
}

// TestFailingEndpointRecovers: an endpoint that fails in every way walhook
// knows (500, timeout, 3xx, connection refused) and then recovers receives
// every event through retries, with its attempts recorded.
func TestFailingEndpointRecovers(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"500", "timeout", "redirect", "refused"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			db := testenv.NewDB(t)
			secret := signing.GenerateSecret()
			var failing atomic.Bool
			failing.Store(true)
			var redirected atomic.Int64
			target := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { redirected.Add(1) }))
			rec := receiver.New(receiver.Options{Secrets: []string{secret}})
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if failing.Load() {
					switch mode {
					case "500":
						w.WriteHeader(http.StatusInternalServerError)
						_, _ = w.Write([]byte("database unavailable"))
					case "timeout":
						select {
						case <-r.Context().Done():
						case <-time.After(10 * time.Second):
						}
					case "redirect":
						http.Redirect(w, r, target.URL, http.StatusFound)
					}
					return
				}
				rec.ServeHTTP(w, r)
			})
			var url string
			var srv *http.Server
			if mode == "refused" {
				url = refusedURL(t)
			} else {
				url = serve(t, h).URL
			}
			run := start(t, db, endpoint("flaky", url, secret, `timeout = "300ms"`))
			for i := 0; i < 5; i++ {
				db.Exec(t, `INSERT INTO contacts (organization_id, first_name) VALUES (1, $1)`, fmt.Sprint("c", i))
			}
			epID := "cfg:flaky"
			testkit.EventuallyWithin(t, 30*time.Second, "5 deliveries with 2 failed attempts each", func() bool {
				ds := deliveries(t, run.stateStore(t), epID)
				if len(ds) < 5 {
					return false
				}
				for _, d := range ds {
					if d.Attempts < 2 {
						return false
					}
				}
				return true
			})
			if mode == "refused" {
				// Bring the endpoint up on the refused address.
				srv = &http.Server{Addr: url[len("http://") : len(url)-len("/hook")], Handler: h}
				go func() { _ = srv.ListenAndServe() }()
				t.Cleanup(func() { srv.Close() })
			}
			failing.Store(false)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := rec.WaitFor(ctx, 5); err != nil {
				t.Fatalf("recovered endpoint got %d of 5 events: %v", len(rec.Received()), err)
			}
			if mode == "redirect" && redirected.Load() != 0 {
				t.Errorf("the redirect target received %d requests: redirects must not be followed", redirected.Load())
			}
			testkit.EventuallyWithin(t, 10*time.Second, "all deliveries marked delivered", func() bool {
				for _, d := range deliveries(t, run.stateStore(t), epID) {
					if d.Status != store.StatusDelivered {
						return false
					}
				}
				return true
			})
			ds := deliveries(t, run.stateStore(t), epID)
			ids := make([]string, len(ds))
			for i, d := range ds {
				ids[i] = d.ID
			}
			attempts, err := run.stateStore(t).ListAttempts(context.Background(), ids)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range ds {
				as := attempts[d.ID]
				if len(as) < 3 {
					t.Fatalf("delivery %s has %d attempts logged, want at least 3 (2 failures and the success)", d.ID, len(as))
				}
				sort.Slice(as, func(i, j int) bool { return as[i].Number < as[j].Number })
				first, last := as[0], as[len(as)-1]
				if first.Error == "" {
					t.Errorf("first attempt has no error: %+v", first)
				}
				switch mode {
				case "500":
					if first.StatusCode != 500 || first.Response != "database unavailable" {
						t.Errorf("first attempt = %d %q", first.StatusCode, first.Response)
					}
				case "redirect":
					if first.StatusCode != http.StatusFound {
						t.Errorf("first attempt status = %d, want 302", first.StatusCode)
					}
				}
				if last.StatusCode != http.StatusNoContent || last.Error != "" {
					t.Errorf("last attempt = %+v, want the 204 success", last)
				}
			}
		})
	}
}

// TestGoneDisablesEndpoint: 410 disables the endpoint at once.
func TestGoneDisablesEndpoint(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	var calls atomic.Int64
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusGone)
	}))
	run := start(t, db, endpoint("gone", srv.URL, signing.GenerateSecret(), ""))
	db.Exec(t, `INSERT INTO contacts (organization_id, first_name) VALUES (1, 'a')`)
	testkit.EventuallyWithin(t, 20*time.Second, "the endpoint to be disabled", func() bool {
		h, err := run.stateStore(t).Health(context.Background(), "cfg:gone")
		return err == nil && h.Disabled
	})
	db.Exec(t, `INSERT INTO contacts (organization_id, first_name) VALUES (1, 'b')`)
	testkit.EventuallyWithin(t, 20*time.Second, "both deliveries failed", func() bool {
		ds := deliveries(t, run.stateStore(t), "cfg:gone")
		return len(ds) == 2 && ds[0].Status == store.StatusFailed && ds[1].Status == store.StatusFailed
	})
	if n := calls.Load(); n != 1 {
		t.Errorf("endpoint called %d times, want 1: a disabled endpoint gets nothing", n)
	}
}

// TestExhaustedDeliveryFails: when the schedule runs out the delivery is
// failed, with every attempt logged, and stays until replayed.
func TestExhaustedDeliveryFails(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	var calls atomic.Int64
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	run := start(t, db, fmt.Sprintf(`
endpoint "down" {
  url    = %q
  events = ["contact.created"]
  secret = %q
  retry {
    schedule = ["20ms", "20ms"]
  }
}`, srv.URL, signing.GenerateSecret()))
	db.Exec(t, `INSERT INTO contacts (organization_id, first_name) VALUES (1, 'a')`)
	testkit.EventuallyWithin(t, 20*time.Second, "the delivery to fail", func() bool {
		ds := deliveries(t, run.stateStore(t), "cfg:down")
		return len(ds) == 1 && ds[0].Status == store.StatusFailed
	})
	d := deliveries(t, run.stateStore(t), "cfg:down")[0]
	if d.Attempts != 3 || d.LastStatus != 503 {
		t.Errorf("failed delivery: attempts %d, last status %d; want 3 attempts ending in 503", d.Attempts, d.LastStatus)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("endpoint called %d times, want 3", n)
	}
	// Replaying it delivers again (it fails again here, and is attempted).
	if _, err := run.stateStore(t).Retry(context.Background(), d.ID); err != nil {
		t.Fatal(err)
	}
	testkit.EventuallyWithin(t, 20*time.Second, "the replayed delivery to be attempted", func() bool { return calls.Load() > 3 })
}

// TestDeadEndpointDoesNotDelayHealthy: a dead endpoint (hanging) does not
// slow a healthy one, and a refused one does not hold back the slot.
func TestDeadEndpointDoesNotDelayHealthy(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	release := make(chan struct{})
	var hanging atomic.Int64
	dead := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hanging.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	live := newCounter()
	liveSrv := serve(t, live)
	secret := signing.GenerateSecret()
	run := start(t, db,
		endpoint("live", liveSrv.URL, secret, "")+
			fmt.Sprintf(`
endpoint "hanging" {
  url     = %q
  events  = ["*"]
  secret  = %q
  timeout = "1h"
}
endpoint "refused" {
  url    = %q
  events = ["*"]
  secret = %q
}`, dead.URL, secret, refusedURL(t), secret))
	const n = 3000
	db.Exec(t, `INSERT INTO contacts (organization_id, first_name) SELECT 1, 'c' || i FROM generate_series(1, $1) i`, n)
	// Every event reaches the live endpoint while the hanging one still
	// holds its first requests: nothing of the live one waited on it.
	live.waitDistinct(t, n, 60*time.Second)
	// First attempts and retries each have the endpoint's concurrency (8).
	if got := hanging.Load(); got == 0 || got > 16 {
		t.Errorf("hanging endpoint has %d requests in flight; want 1..16", got)
	}
	// The refused endpoint's deliveries are all in the store.
	testkit.EventuallyWithin(t, 60*time.Second, "the refused endpoint's deliveries to be stored", func() bool {
		st, err := run.stateStore(t).Stats(context.Background())
		return err == nil && st.ByEndpoint["cfg:refused"].Pending == n
	})
	once.Do(func() { close(release) })
}
