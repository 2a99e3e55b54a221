package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/testenv"
)

func writeOutboxConfig(t *testing.T, db *testenv.DB, url, secret string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "walhook.hcl")
	src := fmt.Sprintf(`
source "postgres" {
  url  = %q
  mode = "outbox"
  outbox {
    table         = "public.webhook_outbox"
    poll_interval = "200ms"
    batch_size    = 20
  }
}
delivery {
  shutdown_timeout = "10s"
}
endpoint "app" {
  url    = %q
  events = ["*"]
  secret = %q
}
`, db.URL, url, secret)
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestOutboxKilledWhilePollingLosesNothing creates the outbox with
// `walhook outbox init`, then kills the polling binary with SIGKILL five
// times under a steady stream of outbox inserts: every committed row is
// delivered, a row delivered twice carries the same webhook-id, and the
// table ends empty.
func TestOutboxKilledWhilePollingLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("process test")
	}
	t.Parallel()
	db := testenv.NewDB(t)
	secret := signing.GenerateSecret()
	s := &sink{secret: secret, ids: map[int64]map[string]int{}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	cfg := writeOutboxConfig(t, db, srv.URL, secret)

	out, err := exec.Command(binary(t), "outbox", "init", "-c", cfg).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ready") {
		t.Fatalf("walhook outbox init: %v\n%s", err, out)
	}
	printed, err := exec.Command(binary(t), "outbox", "init", "-c", cfg, "--print").Output()
	if err != nil || !bytes.Contains(printed, []byte("CREATE TABLE IF NOT EXISTS")) {
		t.Fatalf("walhook outbox init --print: %v\n%s", err, printed)
	}

	d := startDaemon(t, cfg)
	var mu sync.Mutex
	var committed []int64
	stop := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for base := int64(0); ; base += 5 {
			select {
			case <-stop:
				return
			default:
			}
			_, err := db.Pool.Exec(context.Background(),
				`INSERT INTO webhook_outbox (event_type, key, payload)
				 SELECT 'thing.created', ($1::bigint + g)::text, jsonb_build_object('id', $1::bigint + g)
				 FROM generate_series(1, 5) g`, base)
			if err != nil {
				t.Errorf("insert: %v", err)
				return
			}
			mu.Lock()
			for g := int64(1); g <= 5; g++ {
				committed = append(committed, base+g)
			}
			mu.Unlock()
			time.Sleep(2 * time.Millisecond)
		}
	}()

	d = killRepeatedly(t, d, cfg, 5)
	close(stop)
	<-writerDone
	mu.Lock()
	want := append([]int64(nil), committed...)
	mu.Unlock()

	waitDelivered(t, s, d, want)
	// The table empties once the last batches commit their deletes.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var left int
		if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM webhook_outbox`).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d outbox rows left after every row was delivered\n%s", left, d.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Wait(); err != nil {
		t.Errorf("walhook exited with %v after SIGTERM\n%s", err, d.log)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	dups := 0
	for id, wids := range s.ids {
		if len(wids) != 1 {
			t.Errorf("row %d was delivered under %d different webhook-ids: %v", id, len(wids), wids)
		}
		for _, n := range wids {
			dups += n - 1
		}
	}
	if s.bad > 0 {
		t.Errorf("%d deliveries failed signature verification", s.bad)
	}
	t.Logf("%d outbox rows committed across 5 SIGKILLs, all delivered; %d duplicate deliveries (same webhook-id)", len(want), dups)
}
