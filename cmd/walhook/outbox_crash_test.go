package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/walhook/walhook/internal/testkit"
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
	db, s, url := processTest(t, 0)
	cfg := writeOutboxConfig(t, db, url, s.secret)

	out, err := exec.Command(binary(t), "outbox", "init", "-c", cfg).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ready") {
		t.Fatalf("walhook outbox init: %v\n%s", err, out)
	}
	printed, err := exec.Command(binary(t), "outbox", "init", "-c", cfg, "--print").Output()
	if err != nil || !bytes.Contains(printed, []byte("CREATE TABLE IF NOT EXISTS")) {
		t.Fatalf("walhook outbox init --print: %v\n%s", err, printed)
	}

	d := startDaemon(t, cfg)
	stopWriting := writeSteadily(t, func(ctx context.Context, base int64) ([]int64, error) {
		_, err := db.Pool.Exec(ctx,
			`INSERT INTO webhook_outbox (event_type, key, payload)
			 SELECT 'thing.created', ($1::bigint + g)::text, jsonb_build_object('id', $1::bigint + g)
			 FROM generate_series(1, 5) g`, base)
		return []int64{base + 1, base + 2, base + 3, base + 4, base + 5}, err
	})
	d = killRepeatedly(t, d, cfg, 5)
	want := stopWriting()

	waitDelivered(t, s, want)
	// The table empties once the last batches commit their deletes.
	testkit.Eventually(t, "the outbox table to empty", func() bool {
		var left int
		if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM webhook_outbox`).Scan(&left); err != nil {
			t.Fatal(err)
		}
		return left == 0
	})
	d.stop(t)
	t.Logf("%d outbox rows committed across 5 SIGKILLs, all delivered; %d duplicate deliveries (same webhook-id)", len(want), s.checkOnce(t))
}
