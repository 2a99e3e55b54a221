package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/rules"
	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/testenv"
)

// TestBackfillSurvivesSIGKILL: a backfill submitted with walhook backfill
// keeps going across SIGKILLs of walhook run, resuming from its last
// settled chunk: every row arrives, each under one webhook-id however often
// it was re-sent. Running the same backfill again (following it until it
// completes) sends every row again under the same ids.
func TestBackfillSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("process test")
	}
	t.Parallel()
	rows := 20_000
	if raceEnabled {
		rows = 8_000 // still several chunks a kill at 4000/s
	}
	db := testenv.NewDB(t)
	db.Exec(t, `INSERT INTO contacts (organization_id, first_name) SELECT 1, 'c' || i FROM generate_series(1, $1) i`, rows)
	var ids []int64
	for i := int64(1); i <= int64(rows); i++ {
		ids = append(ids, i)
	}
	secret := signing.GenerateSecret()
	s := newSink(secret, 0)
	srv := httptest.NewServer(s)
	defer srv.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	slot := testenv.Name(t, "slot")
	cfg := writeConfig(t, db, slot, srv.URL, secret, fmt.Sprintf(`
event "contact.synced" {
  table = "contacts"
  on    = ["read"]
}
admin {
  listen = %q
  token  = "backfill-test-token-0123456789"
}`, addr))

	d := startDaemon(t, cfg)
	waitSlot(t, db, slot)
	out, err := exec.Command(binary(t), "backfill", "-c", cfg, "--table", "contacts", "--rate", "4000/s", "--chunk-size", "500", "--detach").CombinedOutput()
	if err != nil {
		t.Fatalf("walhook backfill: %v\n%s", err, out)
	}
	id := regexp.MustCompile(`bf_[a-z0-9]+`).FindString(string(out))
	if id == "" {
		t.Fatalf("walhook backfill printed no backfill id: %s", out)
	}
	d = killRepeatedly(t, d, cfg, 3)
	waitDelivered(t, s, ids)
	repeats := s.checkOnce(t)
	t.Logf("%d rows across 3 SIGKILLs, all delivered; %d re-sent under the same webhook-id", rows, repeats)

	// The same backfill again: followed to the end, the same ids.
	out, err = exec.Command(binary(t), "backfill", "-c", cfg, "--table", "contacts").CombinedOutput()
	if err != nil {
		t.Fatalf("walhook backfill (second run): %v\n%s", err, out)
	}
	if !strings.Contains(string(out), fmt.Sprintf("completed: %d rows read", rows)) {
		t.Errorf("the second run did not report its completion:\n%s", out)
	}
	if again := s.checkOnce(t); again < repeats+rows {
		t.Errorf("the second run re-sent %d rows, want every one of %d under its first id", again-repeats, rows)
	}
	var status, errOut bytes.Buffer
	if code := execute(context.Background(), []string{"status", "-c", cfg}, testApp(&status, &errOut)); code != 0 {
		t.Fatalf("walhook status exit %d: %s", code, errOut.String())
	}
	if want := fmt.Sprintf("backfill %s of public.contacts: completed, %d/%d rows (100%%), %d sent", id, rows, rows, rows); !strings.Contains(status.String(), want) {
		t.Errorf("walhook status lacks %q:\n%s", want, status.String())
	}
	d.stop(t)
}

// TestReadmeBackfillSnippet: the event block of the README's "Send the rows
// you already have" loads with the README's example config, and makes its
// event from a row a backfill reads.
func TestReadmeBackfillSnippet(t *testing.T) {
	src, blocks := readmeBlocks(t)
	at := strings.Index(src, "## Send the rows you already have")
	if at < 0 {
		t.Fatal(`README.md has no "Send the rows you already have" section`)
	}
	line := strings.Count(src[:at], "\n") + 1
	var snippet *codeBlock
	for i, b := range blocks {
		if b.lang == "hcl" && b.line > line {
			snippet = &blocks[i]
			break
		}
	}
	if snippet == nil {
		t.Fatal("the section has no hcl block")
	}
	_, base := readmeConfig(t, blocks)
	cfg, diags := config.Parse([]byte(base+snippet.text), "README.md")
	if diags.HasErrors() {
		t.Fatalf("the README's backfill event (line %d) does not load with its example config: %v", snippet.line, diags)
	}
	r, err := rules.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	evs, fails := r.Evaluate(&cdc.Change{Schema: "public", Table: "contacts", Op: cdc.OpRead,
		New: map[string]any{"id": int64(7), "email": "ada@example.com"}, Key: []string{"id"}}, nil)
	if len(fails) > 0 || len(evs) != 1 || evs[0].Type != "contact.synced" || evs[0].Key != "7" {
		t.Fatalf("a read contact made %+v (failures %+v), want one contact.synced keyed 7", evs, fails)
	}
}

func TestBackfillProgressLine(t *testing.T) {
	t.Parallel()
	began := time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)
	total := int64(1000)
	p := progressBar{began: began}
	p.line(backfillStatus{Status: "running", RowsTotal: &total}, began)
	got := p.line(backfillStatus{Status: "running", RowsTotal: &total, RowsDone: 250}, began.Add(10*time.Second))
	if want := "[#######.......................] 250/1000 rows  25 rows/s  ETA 30s"; got != want {
		t.Errorf("line = %q, want %q", got, want)
	}
	got = p.line(backfillStatus{Status: "completed", RowsTotal: &total, RowsDone: 1000}, began.Add(40*time.Second))
	if !strings.HasPrefix(got, "[##############################] 1000/1000 rows") || !strings.HasSuffix(got, "completed") {
		t.Errorf("final line = %q", got)
	}
	// Rows deleted after the count: done ends short of the total, and the
	// bar still shows the backfill done.
	got = p.line(backfillStatus{Status: "completed", RowsTotal: &total, RowsDone: 940}, began.Add(40*time.Second))
	if !strings.HasPrefix(got, "[##############################] 940/1000 rows") {
		t.Errorf("final line after deletes = %q, want a full bar", got)
	}
	if got := (&progressBar{began: began}).line(backfillStatus{Status: "pending"}, began); !strings.Contains(got, "0 rows") || !strings.Contains(got, "ETA -") {
		t.Errorf("line before counting = %q", got)
	}
	for in, want := range map[string]int{"": 0, "2000/s": 2000, "15": 15} {
		if n, err := parseRate(in); err != nil || n != want {
			t.Errorf("parseRate(%q) = %d, %v", in, n, err)
		}
	}
	for _, bad := range []string{"fast", "-1/s", "0", "10/m"} {
		if _, err := parseRate(bad); err == nil {
			t.Errorf("parseRate(%q) accepted", bad)
		}
	}
}

// TestFollowBackfill: following ends with success on completed, with an
// error on failed, and on Ctrl-C (ctx done) detaches without an error and
// without cancelling.
func TestFollowBackfill(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	status, methods := "running", []string{}
	polled := make(chan struct{}, 1)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		methods = append(methods, r.Method)
		st := status
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id": "bf_x", "status": %q, "rows_total": 10, "rows_done": 4, "last_error": "boom"}`, st)
		select {
		case polled <- struct{}{}:
		default:
		}
	}))
	defer api.Close()
	c := &apiClient{base: api.URL, token: "t", http: api.Client()}

	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- followBackfill(ctx, apiBackfills{c}, "bf_x", &out, &errOut) }()
	<-polled
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("detaching: %v", err)
	}
	if !strings.Contains(errOut.String(), "detached: backfill bf_x keeps running") {
		t.Errorf("stderr %q does not say it detached", errOut.String())
	}
	mu.Lock()
	for _, m := range methods {
		if m != "GET" {
			t.Errorf("following sent %s: it must not change the backfill", m)
		}
	}
	status = "failed"
	mu.Unlock()
	if err := followBackfill(context.Background(), apiBackfills{c}, "bf_x", &out, &errOut); err == nil || !strings.Contains(err.Error(), "failed after 4 rows: boom") {
		t.Errorf("a failed backfill: %v", err)
	}
	mu.Lock()
	status = "completed"
	mu.Unlock()
	out.Reset()
	if err := followBackfill(context.Background(), apiBackfills{c}, "bf_x", &out, &errOut); err != nil || !strings.Contains(out.String(), "completed") {
		t.Errorf("a completed backfill: %v, %q", err, out.String())
	}
}

// TestBackfillWithoutAdminBlock: with a config that has no admin block
// (the README's minimal one), walhook backfill submits into the state
// schema, the running walhook picks the backfill up, and the command
// follows it to completion; --follow re-attaches to it afterwards.
func TestBackfillWithoutAdminBlock(t *testing.T) {
	if testing.Short() {
		t.Skip("process test")
	}
	t.Parallel()
	const rows = 500
	db := testenv.NewDB(t)
	db.Exec(t, `INSERT INTO contacts (organization_id, first_name) SELECT 1, 'c' || i FROM generate_series(1, $1) i`, rows)
	var ids []int64
	for i := int64(1); i <= rows; i++ {
		ids = append(ids, i)
	}
	secret := signing.GenerateSecret()
	s := newSink(secret, 0)
	srv := httptest.NewServer(s)
	defer srv.Close()
	slot := testenv.Name(t, "slot")
	cfg := writeConfig(t, db, slot, srv.URL, secret, `
event "contact.synced" {
  table = "contacts"
  on    = ["read"]
}`)
	d := startDaemon(t, cfg)
	waitSlot(t, db, slot)
	out, err := exec.Command(binary(t), "backfill", "-c", cfg, "--table", "contacts").CombinedOutput()
	if err != nil {
		t.Fatalf("walhook backfill without an admin block: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), fmt.Sprintf("completed: %d rows read", rows)) {
		t.Fatalf("walhook backfill did not follow the backfill to its end:\n%s", out)
	}
	waitDelivered(t, s, ids)
	id := regexp.MustCompile(`bf_[a-z0-9]+`).FindString(string(out))
	out, err = exec.Command(binary(t), "backfill", "-c", cfg, "--follow", id).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "backfill "+id+" completed") {
		t.Errorf("walhook backfill --follow %s: %v\n%s", id, err, out)
	}
	// A request the API would refuse is refused the same way.
	out, err = exec.Command(binary(t), "backfill", "-c", cfg, "--table", "contacts", "--where", "nextval('contacts_id_seq') > 0").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "nextval") {
		t.Errorf("an unsafe --where without an admin block: %v\n%s", err, out)
	}
	d.stop(t)
}
