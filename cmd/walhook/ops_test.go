package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/rs/zerolog"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/admin"
	"github.com/walhook/walhook/internal/rules"
	"github.com/walhook/walhook/internal/sender"
	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/internal/store"
	"github.com/walhook/walhook/internal/testkit"
	"github.com/walhook/walhook/testenv"
)

const opsToken = "ops-token-0123456789abcdef"

// opsEnv is a database with walhook's slot, publication and state schema,
// and a config file naming them.
type opsEnv struct {
	db          *testenv.DB
	slot, pub   string
	store       *store.Store
	cfgPath     string
	crmEndpoint string
}

func setupOps(t *testing.T, withState bool) *opsEnv {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db := testenv.NewDB(t)
	e := &opsEnv{db: db, slot: testenv.Name(t, "slot"), pub: testenv.Name(t, "pub"), crmEndpoint: "cfg:crm"}
	if err := cdc.Prepare(ctx, db.URL, cdc.ReaderConfig{Slot: e.slot, Publication: e.pub, Tables: []string{"public.contacts"}}); err != nil {
		t.Fatalf("preparing slot: %v", err)
	}
	t.Cleanup(func() {
		// Whatever the test left; dropping twice is harmless.
		_ = cdc.Teardown(context.Background(), db.URL, e.slot, e.pub)
	})
	if withState {
		st, err := store.Open(ctx, db.Pool, "walhook")
		if err != nil {
			t.Fatal(err)
		}
		e.store = st
	}
	e.cfgPath = filepath.Join(t.TempDir(), "walhook.hcl")
	cfg := fmt.Sprintf(`
source "postgres" {
  url         = %q
  slot        = %q
  publication = %q
}
admin {
  listen = "127.0.0.1:0"
  token  = %q
}
event "contact.created" {
  table = "contacts"
  on    = ["insert"]
}
endpoint "crm" {
  url    = "https://crm.example.com/hooks"
  events = ["contact.*"]
  secret = %q
}
`, db.URL, e.slot, e.pub, opsToken, signing.GenerateSecret())
	if err := os.WriteFile(e.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// query returns one boolean from the test database.
func (e *opsEnv) query(t *testing.T, sql string, args ...any) bool {
	t.Helper()
	var b bool
	if err := e.db.Pool.QueryRow(context.Background(), sql, args...).Scan(&b); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return b
}

func (e *opsEnv) slotExists(t *testing.T) bool {
	return e.query(t, `SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)`, e.slot)
}

func (e *opsEnv) pubExists(t *testing.T) bool {
	return e.query(t, `SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)`, e.pub)
}

func (e *opsEnv) schemaExists(t *testing.T) bool {
	return e.query(t, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'walhook')`)
}

func TestTeardown(t *testing.T) {
	t.Parallel()
	e := setupOps(t, true)
	ctx := context.Background()
	run := func(stdin string, terminal bool, args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		a := testApp(&out, &errOut)
		a.stdin, a.stdinTerminal = strings.NewReader(stdin), terminal
		code := execute(ctx, append([]string{"teardown", "-c", e.cfgPath}, args...), a)
		return code, out.String(), errOut.String()
	}

	// Not a terminal and no --yes: refused, nothing dropped.
	code, _, errOut := run("", false, "--state")
	if code != 1 || !strings.Contains(errOut, "--yes") || !e.slotExists(t) || !e.pubExists(t) || !e.schemaExists(t) {
		t.Fatalf("without --yes: exit %d, %q; slot %v pub %v", code, errOut, e.slotExists(t), e.pubExists(t))
	}
	// On a terminal, anything but "yes" cancels.
	code, out, _ := run("no\n", true, "--state")
	if code != 1 || !strings.Contains(out, "Type \"yes\"") || !e.slotExists(t) || !e.schemaExists(t) {
		t.Fatalf("answered no: exit %d, %q", code, out)
	}
	// Confirmed on the terminal, without --state: the schema stays.
	code, out, errOut = run("yes\n", true)
	if code != 0 || e.slotExists(t) || e.pubExists(t) || !e.schemaExists(t) {
		t.Fatalf("teardown: exit %d, out %q, err %q; slot %v pub %v schema %v", code, out, errOut, e.slotExists(t), e.pubExists(t), e.schemaExists(t))
	}
	if !strings.Contains(out, "dropped replication slot "+e.slot) || !strings.Contains(out, "dropped publication "+e.pub) {
		t.Errorf("teardown output %q", out)
	}
	// Again with --state --yes: the slot and publication are already gone.
	code, out, errOut = run("", false, "--state", "--yes")
	if code != 0 || e.schemaExists(t) {
		t.Fatalf("teardown --state: exit %d, %q %q", code, out, errOut)
	}
	if !strings.Contains(out, "did not exist") || !strings.Contains(out, "dropped state schema walhook") {
		t.Errorf("second teardown output %q", out)
	}
}

func TestTeardownRefusesAnActiveSlot(t *testing.T) {
	t.Parallel()
	e := setupOps(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Hold the slot over a replication connection, as a running walhook does.
	pcfg, err := pgconn.ParseConfig(e.db.URL)
	if err != nil {
		t.Fatal(err)
	}
	pcfg.RuntimeParams["replication"] = "database"
	conn, err := pgconn.ConnectConfig(ctx, pcfg)
	if err != nil {
		t.Fatal(err)
	}
	err = pglogrepl.StartReplication(ctx, conn, e.slot, 0, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", "publication_names '" + e.pub + "'"}})
	if err != nil {
		conn.Close(ctx)
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := execute(ctx, []string{"teardown", "-c", e.cfgPath, "--yes"}, testApp(&out, &errOut))
	if code != 1 || !strings.Contains(errOut.String(), "in use by pid") || !e.slotExists(t) {
		t.Errorf("teardown of an active slot: exit %d, %q; slot exists %v", code, errOut.String(), e.slotExists(t))
	}
	conn.Close(ctx)
	// Once the reader is gone (the server releases the slot shortly after
	// the connection closes), teardown goes through.
	testkit.Eventually(t, "teardown to go through once the reader left", func() bool {
		errOut.Reset()
		return execute(ctx, []string{"teardown", "-c", e.cfgPath, "--yes"}, testApp(&out, &errOut)) == 0
	})
	if e.slotExists(t) || e.pubExists(t) {
		t.Fatalf("teardown after the reader left: %q; slot exists %v, publication exists %v", errOut.String(), e.slotExists(t), e.pubExists(t))
	}
}

func TestStatus(t *testing.T) {
	t.Parallel()
	e := setupOps(t, true)
	ctx := context.Background()
	// WAL written after the slot's creation is lag.
	for i := 0; i < 20; i++ {
		e.db.Exec(t, `INSERT INTO contacts (organization_id, email, first_name) VALUES (1, $1, $2)`, fmt.Sprintf("p%d@example.com", i), strings.Repeat("x", 200))
	}
	ds := []store.Delivery{
		{EventID: "evt_1", EventType: "contact.created", EndpointID: "cfg:crm", Body: []byte(`{}`), EventTime: time.Now(), CommitLSN: 1},
		{EventID: "evt_2", EventType: "contact.created", EndpointID: "cfg:crm", Body: []byte(`{}`), EventTime: time.Now(), CommitLSN: 2},
		{EventID: "evt_3", EventType: "contact.created", EndpointID: "cfg:crm", Body: []byte(`{}`), EventTime: time.Now(), CommitLSN: 3,
			Status: store.StatusFailed, LastError: "status 500"},
	}
	if err := e.store.Persist(ctx, ds); err != nil {
		t.Fatal(err)
	}
	if err := e.store.Disable(ctx, "cfg:crm", "endpoint answered 410 Gone"); err != nil {
		t.Fatal(err)
	}
	if err := e.store.RecordFailures(ctx, []store.FailedEvaluation{{Rule: "contact.created", Table: "public.contacts", Op: "insert",
		CommitLSN: 9, Position: 0, Error: "division by zero"}}); err != nil {
		t.Fatal(err)
	}

	var out, errOut bytes.Buffer
	if code := execute(ctx, []string{"status", "-c", e.cfgPath}, testApp(&out, &errOut)); code != 0 {
		t.Fatalf("status exit %d: %s", code, errOut.String())
	}
	text := out.String()
	t.Logf("walhook status:\n%s", text)
	for _, want := range []string{
		"slot " + e.slot + ": inactive", "confirmed ", "publication " + e.pub + ": 1 tables",
		"retry queue: 2 pending, 2 due, 1 failed", "failed evaluations: 1",
		"cfg:crm", "disabled: endpoint answered 410 Gone",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("status output lacks %q:\n%s", want, text)
		}
	}

	out.Reset()
	if code := execute(ctx, []string{"status", "--config", e.cfgPath, "--json"}, testApp(&out, &errOut)); code != 0 {
		t.Fatalf("status --json exit %d: %s", code, errOut.String())
	}
	var rep statusReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out.String())
	}
	if !rep.Slot.Exists || rep.Slot.Active || rep.Slot.LagBytes < 4000 || rep.Queue == nil || rep.Queue.Pending != 2 ||
		rep.Queue.Failed != 1 || rep.FailedEvaluations != 1 || len(rep.Endpoints) != 1 || !rep.Endpoints[0].Disabled ||
		rep.Endpoints[0].Pending != 2 || rep.Endpoints[0].Failed != 1 {
		t.Errorf("status --json = %+v", rep)
	}
}

func TestStatusBeforeFirstRun(t *testing.T) {
	t.Parallel()
	e := setupOps(t, false)
	// walhook creates its slot only after its state schema.
	if err := cdc.Teardown(context.Background(), e.db.URL, e.slot, ""); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := execute(context.Background(), []string{"status", "-c", e.cfgPath}, testApp(&out, &errOut)); code != 0 {
		t.Fatalf("status exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "has not run against it yet") || e.schemaExists(t) {
		t.Errorf("status without state: %q (schema created: %v)", out.String(), e.schemaExists(t))
	}
}

func TestDeliveriesCommands(t *testing.T) {
	t.Parallel()
	e := setupOps(t, true)
	ctx := context.Background()
	var ds []store.Delivery
	for i := 0; i < 3; i++ {
		ds = append(ds, store.Delivery{EventID: fmt.Sprintf("evt_%d", i), EventType: "contact.created", EndpointID: "cfg:crm",
			Body: []byte(`{}`), EventTime: time.Now(), CommitLSN: uint64(i + 1), Status: store.StatusFailed, LastError: "status 503"})
	}
	if err := e.store.Persist(ctx, ds); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (int, string, string) {
		return walhook(ctx, append([]string{"deliveries"}, args...)...)
	}
	code, out, errOut := run("list", "-c", e.cfgPath, "--endpoint", "cfg:crm", "--status", "failed")
	if code != 0 || strings.Count(out, "status 503") != 3 || !strings.Contains(out, "ENDPOINT") {
		t.Fatalf("list: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = run("list", "-c", e.cfgPath, "--json", "--limit", "2", "--since", "1h")
	if code != 0 || strings.Count(out, "\n") != 2 {
		t.Errorf("list --json --limit 2: exit %d\n%s", code, out)
	}

	id := store.DeliveryID("evt_0", "cfg:crm")
	code, out, errOut = run("retry", "-c", e.cfgPath, id, "dlv_missing")
	if code != 1 || !strings.Contains(out, id+" (contact.created to cfg:crm) queued for retry") || !strings.Contains(errOut, "dlv_missing not found") {
		t.Errorf("retry: exit %d\n%s%s", code, out, errOut)
	}
	if d, _ := e.store.GetDelivery(ctx, id); d.Status != store.StatusPending {
		t.Errorf("retried delivery is %s", d.Status)
	}
	code, out, errOut = run("recover", "-c", e.cfgPath, "--endpoint", "cfg:crm", "--since", time.Now().Add(-time.Hour).Format(time.RFC3339))
	if code != 0 || !strings.Contains(out, "2 failed deliveries of cfg:crm") {
		t.Errorf("recover: exit %d\n%s%s", code, out, errOut)
	}
	if st, _ := e.store.Stats(ctx); st.Failed != 0 || st.Due != 3 {
		t.Errorf("after recover: %+v", st)
	}
	for _, args := range [][]string{{"recover", "-c", e.cfgPath}, {"retry", "-c", e.cfgPath}, {"list", "--since", "whenever"}, {"frobnicate"}} {
		if code, _, _ := run(args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

// cliTester sends test events like the relay: signed, through sender.
type cliTester struct{ store *store.Store }

func (c cliTester) SendTest(ctx context.Context, id string) (store.Attempt, error) {
	w, err := c.store.GetWebhook(ctx, id)
	if err != nil {
		return store.Attempt{}, err
	}
	signer, err := signing.New(w.Signing, []string{w.Secrets[0].Value}, signing.Options{})
	if err != nil {
		return store.Attempt{}, err
	}
	body := []byte(`{"id":"evt_test","type":"webhook.test","data":{}}`)
	h := http.Header{}
	signer.Sign(h, signing.Message{ID: "evt_test", Type: "webhook.test", Timestamp: time.Now(), Body: body})
	client := sender.New(sender.Options{})
	defer client.Close()
	res := client.Send(ctx, sender.Request{URL: w.URL, Header: h, Body: body})
	return store.Attempt{EventID: "evt_test", EventType: "webhook.test", EndpointID: id, Number: 1, AttemptedAt: time.Now(),
		Duration: res.Duration, StatusCode: res.StatusCode, Error: res.ErrorText(), Response: string(res.Response)}, nil
}

func TestWebhooksCommands(t *testing.T) {
	t.Parallel()
	e := setupOps(t, true)
	ctx := context.Background()
	api := httptest.NewServer(admin.New(admin.Options{
		Store: e.store, Tokens: []string{opsToken}, Logger: zerolog.New(io.Discard), Tester: cliTester{e.store},
		Events: []rules.EventInfo{{Name: "contact.created", Table: "public.contacts", Ops: []string{"insert"}}},
	}))
	defer api.Close()
	got := make(chan http.Header, 4)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
		io.WriteString(w, "thanks")
	}))
	defer rcv.Close()

	run := func(args ...string) (int, string, string) {
		return walhook(ctx, append(append([]string{"webhooks"}, args...), "--api", api.URL, "-c", e.cfgPath)...)
	}
	code, out, errOut := run("create", "--url", rcv.URL+"/hook", "--events", "contact.*", "--tenant", "acme", "--header", "X-Team=crm")
	if code != 0 || !strings.Contains(out, "secret: whsec_") {
		t.Fatalf("create: exit %d\n%s%s", code, out, errOut)
	}
	id := strings.Fields(strings.TrimPrefix(out, "created "))[0]
	if w, err := e.store.GetWebhook(ctx, id); err != nil || w.Tenant != "acme" || w.Headers["X-Team"] != "crm" {
		t.Errorf("stored webhook %+v: %v", w, err)
	}

	code, out, _ = run("list")
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "acme") {
		t.Errorf("list: exit %d\n%s", code, out)
	}
	code, out, errOut = run("test", id)
	if code != 0 || !strings.Contains(out, "delivered (status 200") || !strings.Contains(out, "response: thanks") {
		t.Errorf("test: exit %d\n%s%s", code, out, errOut)
	}
	select {
	case h := <-got:
		if h.Get("webhook-signature") == "" {
			t.Errorf("test event unsigned: %v", h)
		}
	case <-time.After(10 * time.Second):
		t.Error("the test event did not arrive")
	}
	// API errors come back as diagnostics.
	code, _, errOut = run("create", "--url", "ftp://x", "--events", "contact.*")
	if code != 1 || !strings.Contains(errOut, "400 validation_failed") {
		t.Errorf("bad create: exit %d, %q", code, errOut)
	}
	code, out, _ = run("delete", id)
	if code != 0 || !strings.Contains(out, "deleted "+id) {
		t.Errorf("delete: exit %d %q", code, out)
	}
	code, _, errOut = run("delete", id)
	if code != 1 || !strings.Contains(errOut, "404 not_found") {
		t.Errorf("second delete: exit %d, %q", code, errOut)
	}
	// Without --api the address comes from the config (nothing listens
	// on port 0, so the call fails with a hint).
	if code, _, errOut := walhook(ctx, "webhooks", "list", "--config", e.cfgPath); code != 1 || !strings.Contains(errOut, "is walhook running?") {
		t.Errorf("list via config: exit %d, %q", code, errOut)
	}
	if dialable(":8080") != "127.0.0.1:8080" || dialable("[::]:9") != "[::1]:9" || dialable("10.1.1.1:80") != "10.1.1.1:80" {
		t.Error("dialable")
	}
}
