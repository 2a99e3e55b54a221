package eventschema

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestCatalogFollowsTheTable reads event schemas from a real database: a
// column added shows up once the cached table is older than TableTTL.
func TestCatalogFollowsTheTable(t *testing.T) {
	t.Parallel()
	db := testenv.NewEmptyDB(t)
	db.Exec(t, `CREATE TABLE things (id int PRIMARY KEY)`)
	cfg, diags := config.Parse([]byte(`source "postgres" { url = "`+db.URL+`" }
event "thing.created" {
  table = "things"
  on    = ["insert"]
}
event "ghost.created" {
  table = "ghosts"
  on    = ["insert"]
}`), "test.hcl")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	c := NewCatalog(cfg)
	clock := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	c.now = func() time.Time { return clock }
	ctx := context.Background()
	columns := func() string {
		t.Helper()
		ev, err := c.Describe(ctx, "thing.created")
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, p := range ev.Schema.Properties.Get("data").Properties {
			names = append(names, p.Name)
		}
		return strings.Join(names, ",")
	}
	if got := columns(); got != "id" {
		t.Fatalf("columns %s", got)
	}
	db.Exec(t, `ALTER TABLE things ADD COLUMN note text`)
	if got := columns(); got != "id" {
		t.Errorf("within TableTTL: columns %s, want the cached id", got)
	}
	clock = clock.Add(TableTTL)
	if got := columns(); got != "id,note" {
		t.Errorf("after TableTTL: columns %s, want id,note", got)
	}

	if _, err := c.Describe(ctx, "no.such"); !errors.Is(err, ErrUnknownEvent) {
		t.Errorf("unknown event: %v", err)
	}
	if _, err := c.Describe(ctx, "ghost.created"); err == nil || !strings.Contains(err.Error(), "there is no table public.ghosts") {
		t.Errorf("missing table: %v", err)
	}
}
