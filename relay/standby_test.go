package relay_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/internal/testkit"
	"github.com/walhook/walhook/testenv"
)

// TestStandbyTakesOver: two instances share one config; one streams from
// the slot, the other waits for it. When the first stops, the second takes
// the slot and delivers what was committed meanwhile: at once, told by the
// first through the state database, since its own next try of the slot is
// an hour away.
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
	a := runConfig(t, db, src)
	testkit.EventuallyWithin(t, 30*time.Second, "the first instance to stream", func() bool { return a.ready() == nil })
	standby := testOptions
	standby.SlotInUseRetry = time.Hour
	b := runConfig(t, db, src, standby)
	testkit.EventuallyWithin(t, 30*time.Second, "the second instance to find the slot in use", func() bool {
		err := b.ready()
		return err != nil && strings.Contains(err.Error(), "in use")
	})

	db.Exec(t, `INSERT INTO contacts (organization_id, first_name) SELECT 1, 'a' || i FROM generate_series(1, 10) i`)
	sink.waitDistinct(t, 10, 30*time.Second)
	if err := a.stop(); err != nil {
		t.Fatalf("first instance: %v", err)
	}
	db.Exec(t, `INSERT INTO contacts (organization_id, first_name) SELECT 1, 'b' || i FROM generate_series(1, 10) i`)
	testkit.EventuallyWithin(t, 60*time.Second, "the standby to take the slot", func() bool { return b.ready() == nil })
	sink.waitDistinct(t, 20, 30*time.Second)
}
