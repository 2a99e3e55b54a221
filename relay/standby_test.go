package relay_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/relay"
	"github.com/walhook/walhook/testenv"
)

// TestStandbyTakesOver: two instances share one config; one streams from
// the slot, the other waits for it. When the first stops, the second takes
// the slot and delivers what was committed meanwhile.
func TestStandbyTakesOver(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	secret := signing.GenerateSecret()
	sink := newCounter()
	srv := serve(t, sink)
	slot := testenv.Name(t, "slot")
	src := fmt.Sprintf(`
source "postgres" {
  url         = %q
  slot        = %q
  publication = %q
}
delivery {
  shutdown_timeout = "5s"
}
%s
%s`, db.URL, slot, slot, events, endpoint("app", srv.URL, secret, ""))
	cfg, diags := config.Parse([]byte(src), "test.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	startOne := func() (*relay.Relay, context.CancelFunc, chan error) {
		ctx, cancel := context.WithCancel(context.Background())
		log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.ErrorLevel)
		r, err := relay.New(ctx, cfg, log, relay.Options{RetryPoll: 20 * time.Millisecond})
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
		return r, cancel, done
	}
	a, stopA, doneA := startOne()
	waitUntil(t, 30*time.Second, "the first instance to stream", func() bool { return a.Reader.Status().Streaming })
	b, _, _ := startOne()
	waitUntil(t, 30*time.Second, "the second instance to find the slot in use", func() bool { return b.Reader.Status().LastError != "" })
	if b.Reader.Status().Streaming {
		t.Fatal("both instances stream from one slot")
	}

	db.Exec(t, `INSERT INTO contacts (organization_id, first_name) SELECT 1, 'a' || i FROM generate_series(1, 10) i`)
	sink.waitDistinct(t, 10, 30*time.Second)
	stopA()
	if err := <-doneA; err != nil {
		t.Fatalf("first instance: %v", err)
	}
	db.Exec(t, `INSERT INTO contacts (organization_id, first_name) SELECT 1, 'b' || i FROM generate_series(1, 10) i`)
	waitUntil(t, 60*time.Second, "the standby to take the slot", func() bool { return b.Reader.Status().Streaming })
	sink.waitDistinct(t, 20, 30*time.Second)
}
