package main

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/internal/testkit"
	"github.com/walhook/walhook/testenv"
)

// TestRunRefusesAWrongOutboxTable: `walhook run` on an outbox table with
// the wrong column names exits 1 at once, with the fix validate --db
// gives, instead of failing its claims forever.
func TestRunRefusesAWrongOutboxTable(t *testing.T) {
	if testing.Short() {
		t.Skip("process test")
	}
	t.Parallel()
	db := testenv.NewDB(t)
	db.Exec(t, `CREATE TABLE webhook_outbox (id bigserial PRIMARY KEY, type text NOT NULL, key text, tenant text,
		data jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`)
	cfg := writeOutboxConfig(t, db, "http://127.0.0.1:1/hook", signing.GenerateSecret())
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Timeout)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, binary(t), "run", "-c", cfg).CombinedOutput()
	took := time.Since(start)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || ctx.Err() != nil {
		t.Fatalf("walhook run: %v after %s, want exit status 1:\n%s", err, took, out)
	}
	for _, want := range []string{
		"outbox table public.webhook_outbox cannot be read as it is",
		`There is no column event_type (walhook reads event_type from it; type looks like it). Fix: ALTER TABLE \"public\".\"webhook_outbox\" RENAME COLUMN \"type\" TO event_type;`,
		`RENAME COLUMN \"data\" TO payload;`,
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "claiming outbox rows") {
		t.Errorf("walhook claimed rows from the table before refusing it:\n%s", out)
	}
	t.Logf("walhook run refused the table and exited 1 after %s:\n%s", took.Round(time.Millisecond), out)
}
