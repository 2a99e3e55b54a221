package relay_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/internal/testkit"
	"github.com/walhook/walhook/testenv"
)

// TestOrderingByKeyUnderFailures: with ordering = "key", the events of one
// deal reach the endpoint in commit order even though a third of the
// attempts fail, and a failing key holds back only itself.
func TestOrderingByKeyUnderFailures(t *testing.T) {
	t.Parallel()
	orderingByKey(t, 20, 15, func(db *testenv.DB, steps int) {
		for step := 1; step <= steps; step++ {
			// One transaction per step moves every deal, interleaving keys.
			db.Exec(t, `UPDATE deals SET stage = $1`, fmt.Sprintf("s%d", step))
		}
	})
}

// TestOrderingByKeyInOneBigTransaction: the same with every step in one
// transaction of 3,000 changes, which reaches the dispatcher in pieces
// whose deliveries mostly go through the store (dispatch.Batch.Bulk).
func TestOrderingByKeyInOneBigTransaction(t *testing.T) {
	t.Parallel()
	orderingByKey(t, 20, 150, func(db *testenv.DB, steps int) {
		db.Exec(t, `DO $$ BEGIN FOR s IN 1..`+fmt.Sprint(steps)+` LOOP UPDATE deals SET stage = 's' || s; END LOOP; END $$`)
	})
}

// TestOrderingByKeySharedThroughTheStore: the same with share = "all",
// where every delivery goes through the store and the store's head-of-key
// rule alone keeps the order; each reaches the endpoint once settled.
func TestOrderingByKeySharedThroughTheStore(t *testing.T) {
	t.Parallel()
	r := orderingByKey(t, 20, 15, func(db *testenv.DB, steps int) {
		for step := 1; step <= steps; step++ {
			db.Exec(t, `UPDATE deals SET stage = $1`, fmt.Sprintf("s%d", step))
		}
	}, "delivery {\n  share = \"all\"\n  shutdown_timeout = \"10s\"\n}\n")
	// The receiver has every delivery; their outcomes are written to the
	// store by the retry loop's completer a moment later.
	var stored int
	testkit.EventuallyWithin(t, 30*time.Second, "every delivery marked delivered in the store", func() bool {
		if err := r.db.Pool.QueryRow(t.Context(), `SELECT count(*) FROM walhook.deliveries WHERE status = 'delivered'`).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		return stored == 20*15
	})
}

// orderingByKey moves deals through steps stages with write and checks
// that an ordered endpoint failing a third of the attempts receives every
// deal's stages in commit order. extra are more config blocks.
func orderingByKey(t *testing.T, deals, steps int, write func(db *testenv.DB, steps int), extra ...string) *running {
	db := testenv.NewDB(t)

	var mu sync.Mutex
	accepted := map[string][]int{} // deal id -> stages accepted, in arrival order
	seen := map[string]bool{}      // webhook-id accepted
	total := 0
	wake := make(chan struct{}, 1)
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rand.IntN(3) == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var body struct {
			Data struct {
				ID    json.Number `json:"id"`
				Stage string      `json:"stage"`
			} `json:"data"`
		}
		buf := new(bytes.Buffer)
		_, _ = buf.ReadFrom(r.Body)
		if err := json.Unmarshal(buf.Bytes(), &body); err != nil {
			t.Errorf("bad body: %v", err)
		}
		var stage int
		fmt.Sscanf(body.Data.Stage, "s%d", &stage)
		mu.Lock()
		id := r.Header.Get("webhook-id")
		if !seen[id] {
			seen[id] = true
			accepted[body.Data.ID.String()] = append(accepted[body.Data.ID.String()], stage)
			total++
		}
		mu.Unlock()
		select {
		case wake <- struct{}{}:
		default:
		}
		w.WriteHeader(http.StatusOK)
	}))
	h := start(t, db, fmt.Sprintf(`
endpoint "ordered" {
  url         = %q
  events      = ["deal.stage.changed"]
  secret      = %q
  ordering    = "key"
  concurrency = 4
  retry {
    schedule = ["10ms", "10ms", "10ms", "10ms", "10ms", "10ms", "10ms", "10ms", "10ms", "10ms", "10ms", "10ms", "10ms", "10ms", "10ms", "10ms", "10ms", "10ms", "10ms", "10ms"]
  }
}`, srv.URL, signing.GenerateSecret()), extra...)

	db.Exec(t, `INSERT INTO deals (organization_id, title) SELECT 1, 'd' || i FROM generate_series(1, $1) i`, deals)
	write(db, steps)
	deadline := time.After(90 * time.Second)
	for {
		mu.Lock()
		n := total
		mu.Unlock()
		if n == deals*steps {
			break
		}
		select {
		case <-wake:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("received %d of %d stage changes", n, deals*steps)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for id, stages := range accepted {
		for i, s := range stages {
			if s != i+1 {
				t.Fatalf("deal %s received stages %v: not in commit order", id, stages)
			}
		}
	}
	return h
}
