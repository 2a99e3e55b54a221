package relay

import (
	"context"
	"fmt"
	"testing"

	"github.com/rs/zerolog"

	"github.com/walhook/walhook/cdc/outbox"
	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/testenv"
)

// TestConsoleOutboxBacklog: in polling mode the console's overview source
// carries the outbox backlog.
func TestConsoleOutboxBacklog(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	sql, err := outbox.TableSQL("public.webhook_outbox")
	if err != nil {
		t.Fatal(err)
	}
	db.Exec(t, sql)
	db.Exec(t, `INSERT INTO webhook_outbox (event_type, payload, created_at)
		SELECT 'thing.created', '{}', now() - interval '1 minute' FROM generate_series(1, 2)`)
	cfg, diags := config.Parse([]byte(fmt.Sprintf(`
source "postgres" {
  url  = %q
  mode = "outbox"
  outbox {
    table = "public.webhook_outbox"
  }
}
endpoint "app" {
  url    = "http://127.0.0.1:1/"
  events = ["*"]
  secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
}
`, db.URL)), "t.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	ctx := context.Background()
	r, err := New(ctx, cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer r.source.Finish(ctx) // closes the poller's connections
	st := r.sourceStatus()
	if st.Mode != "outbox" || st.RowsWaiting == nil || *st.RowsWaiting != 2 || st.RowsEstimated ||
		st.OldestAgeSeconds == nil || *st.OldestAgeSeconds < 59 {
		t.Errorf("source status %+v", st)
	}
}
