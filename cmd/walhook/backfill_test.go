package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strings"
	"testing"

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
	const rows = 20_000
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
	if !strings.Contains(string(out), "completed: 20000 rows read") {
		t.Errorf("the second run did not report its completion:\n%s", out)
	}
	if again := s.checkOnce(t); again < repeats+rows {
		t.Errorf("the second run re-sent %d rows, want every one of %d under its first id", again-repeats, rows)
	}
	var status, errOut bytes.Buffer
	if code := execute(context.Background(), []string{"status", "-c", cfg}, testApp(&status, &errOut)); code != 0 {
		t.Fatalf("walhook status exit %d: %s", code, errOut.String())
	}
	if want := "backfill " + id + " of public.contacts: completed, 20000/20000 rows (100%), 20000 sent"; !strings.Contains(status.String(), want) {
		t.Errorf("walhook status lacks %q:\n%s", want, status.String())
	}
	d.stop(t)
}
