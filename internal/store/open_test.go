package store

import (
	"io/fs"
	"regexp"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

func TestOpenConcurrentAndIdempotent(t *testing.T) {
	t.Parallel()
	for _, schema := range []string{"", "walhook state", oddSchema} {
		t.Run(schema, func(t *testing.T) {
			t.Parallel()
			db := setupEmpty(t)
			var wg sync.WaitGroup
			errs := make([]error, 4)
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = Open(ctx(t), db.Pool, schema)
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("concurrent Open %d: %v", i, err)
				}
			}
			s, err := Open(ctx(t), db.Pool, schema)
			if err != nil {
				t.Fatalf("Open again: %v", err)
			}
			want := schema
			if want == "" {
				want = DefaultSchema
			}
			if s.Schema() != want {
				t.Fatalf("Schema() = %q, want %q", s.Schema(), want)
			}
			var version int
			q := "SELECT version FROM " + pgx.Identifier{want, "schema_version"}.Sanitize()
			if err := db.Pool.QueryRow(ctx(t), q).Scan(&version); err != nil {
				t.Fatalf("reading schema version: %v", err)
			}
			src, _ := migrationSource()
			if want, _ := fs.ReadDir(src, "."); version != len(want) {
				t.Fatalf("schema version = %d, want %d (the highest migration number)", version, len(want))
			}
			// The store works in it.
			mustPersist(t, s, delivery(1, "cfg:a", ""))
			if ids := claimIDs(t, s, 10, 0); len(ids) != 1 {
				t.Fatalf("claimed %v, want one delivery", ids)
			}
			// Nothing landed in public.
			var n int
			if err := db.Pool.QueryRow(ctx(t), "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Fatalf("%d tables in public, want 0", n)
			}
		})
	}
}

func TestDrop(t *testing.T) {
	t.Parallel()
	s, db := setup(t)
	mustPersist(t, s, delivery(1, "cfg:a", ""))
	if err := Drop(ctx(t), db.Pool, oddSchema); err != nil {
		t.Fatalf("Drop: %v", err)
	}
	var n int
	if err := db.Pool.QueryRow(ctx(t), "SELECT count(*) FROM pg_namespace WHERE nspname = $1", oddSchema).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("schema still there after Drop")
	}
	if err := Drop(ctx(t), db.Pool, oddSchema); err != nil {
		t.Fatalf("Drop of a missing schema: %v", err)
	}
	if _, err := Open(ctx(t), db.Pool, oddSchema); err != nil {
		t.Fatalf("Open after Drop: %v", err)
	}
}

func TestIDs(t *testing.T) {
	t.Parallel()
	id := DeliveryID("evt_1", "cfg:a")
	if !regexp.MustCompile(`^dlv_[a-z2-7]{26}$`).MatchString(id) {
		t.Fatalf("DeliveryID = %q", id)
	}
	if id != DeliveryID("evt_1", "cfg:a") {
		t.Fatal("DeliveryID is not deterministic")
	}
	if id == DeliveryID("evt_1", "cfg:b") || id == DeliveryID("evt_2", "cfg:a") {
		t.Fatal("DeliveryID collides")
	}
	w := NewWebhookID()
	if !regexp.MustCompile(`^ep_[a-z2-7]{26}$`).MatchString(w) || w == NewWebhookID() {
		t.Fatalf("NewWebhookID = %q", w)
	}
	if got := channelName("walhook"); got != "walhook_webhooks" {
		t.Fatalf("channelName = %q", got)
	}
	long := channelName(strings.Repeat("é", 40))
	if len(long) > 63 || !utf8.ValidString(long) || long != strings.Repeat("é", 31) {
		t.Fatalf("channelName of a long name = %q (%d bytes)", long, len(long))
	}
}
