package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/walhook/walhook/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// oddSchema exercises identifier and literal quoting everywhere.
const oddSchema = `walhook "state".v1's\x`

// setup opens a store in a fresh database, in oddSchema unless a schema is given.
func setup(t testing.TB, schema ...string) (*Store, *testenv.DB) {
	t.Helper()
	db := testenv.NewEmptyDB(t)
	name := oddSchema
	if len(schema) > 0 {
		name = schema[0]
	}
	s, err := Open(ctx(t), db.Pool, name)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s, db
}

// secondStore opens, on a pool of its own, a second store of setup's
// database (in oddSchema): a second process.
func secondStore(t testing.TB, db *testenv.DB) *Store {
	t.Helper()
	pool, err := pgxpool.New(ctx(t), db.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s, err := Open(ctx(t), pool, oddSchema)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// ctx is a context with a deadline for one test step.
func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

// delivery makes a pending delivery of event i to endpoint, with key.
func delivery(i int, endpoint, key string) Delivery {
	ev := fmt.Sprintf("evt_%06d", i)
	return Delivery{
		ID:         DeliveryID(ev, endpoint),
		EventID:    ev,
		EventType:  "deal.created",
		EndpointID: endpoint,
		Key:        key,
		Tenant:     "acme",
		Body:       []byte(fmt.Sprintf(`{"id":%q,"n":%d}`, ev, i)),
		EventTime:  time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC),
		CommitLSN:  uint64(0x16B3748 + i),
		Status:     StatusPending,
	}
}

func mustPersist(t testing.TB, s *Store, ds ...Delivery) {
	t.Helper()
	if err := s.Persist(ctx(t), ds); err != nil {
		t.Fatalf("Persist: %v", err)
	}
}

func mustGet(t testing.TB, s *Store, id string) Delivery {
	t.Helper()
	d, err := s.GetDelivery(ctx(t), id)
	if err != nil {
		t.Fatalf("GetDelivery(%s): %v", id, err)
	}
	return d
}

func claimIDs(t testing.TB, s *Store, limit int, lease time.Duration) []string {
	t.Helper()
	ds, err := s.ClaimDue(ctx(t), limit, lease, nil)
	if err != nil {
		t.Fatalf("ClaimDue: %v", err)
	}
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
	}
	return ids
}

// setupEmpty is a fresh database without a store.
func setupEmpty(t testing.TB) *testenv.DB {
	t.Helper()
	return testenv.NewEmptyDB(t)
}
