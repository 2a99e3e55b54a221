package config

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/walhook/walhook/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestCheckDatabase(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	db.Exec(t, `CREATE TABLE notes (id bigint PRIMARY KEY, body text, pinned bool)`)
	src := `source "postgres" { url = "` + db.URL + `" }
event "deal.stage.changed" {
  table = "deals"
  on    = ["update"]
  when  = old.stage != new.stage
  data  = merge(new, { previous_stage = old.stage, plan = try(new.metadata.plan, null) })
}
event "contact.updated" {
  table = "contacts"
  on    = ["update"]
  when  = length(changed) > 0
}
event "deal.typo" {
  table = "deals"
  on    = ["insert"]
  data  = { s = new.stagee } # <- column
}
event "ghost.created" {
  table = "ghosts" # <- table
  on    = ["insert"]
}
event "note.unpinned" {
  table = "notes"
  on    = ["update"]
  when  = old.pinned && !new.pinned # <- identity
  key   = old.id
  data  = { id = new.id, pinned = new.pinned }
}
event "note.edited" {
  table = "public.notes"
  on    = ["update"]
  when  = length(changed) > 0 # <- changed
  data  = { id = new.id, body = new.body } # <- toast
}
event "note.touched" { # <- toast whole
  table = "notes"
  on    = ["update"]
}
event "note.created" {
  table = "notes"
  on    = ["insert"]
}
`
	_, diags := checkSource(t, src)
	lineOf := func(marker string) int {
		for i, l := range strings.Split(src, "\n") {
			if strings.Contains(l, "# <- "+marker) {
				return i + 1
			}
		}
		t.Fatalf("no marker %s", marker)
		return 0
	}
	want := []struct {
		sev    hcl.DiagnosticSeverity
		marker string
		text   string
	}{
		{hcl.DiagError, "column", `Table public.deals has no column "stagee"`},
		{hcl.DiagError, "table", "There is no table public.ghosts"},
		{hcl.DiagWarning, "identity", "ALTER TABLE public.notes REPLICA IDENTITY FULL;"},
		{hcl.DiagWarning, "changed", `Event "note.edited" reads changed`},
		{hcl.DiagWarning, "toast", `Event "note.edited" reads body of public.notes on update`},
		{hcl.DiagWarning, "toast whole", `Event "note.touched" reads body of public.notes on update`},
	}
	if len(diags) != len(want) {
		t.Errorf("got %d diagnostics, want %d: %s", len(diags), len(want), diags.Error())
	}
	for _, w := range want {
		found := false
		for _, d := range diags {
			if d.Severity == w.sev && strings.Contains(d.Detail, w.text) && d.Subject != nil && d.Subject.Start.Line == lineOf(w.marker) {
				found = true
			}
		}
		if !found {
			t.Errorf("no diagnostic %q at line %d; got %s", w.text, lineOf(w.marker), diags.Error())
		}
	}
}

func TestCheckDatabaseUnreachable(t *testing.T) {
	t.Parallel()
	cfg, diags := Parse([]byte(`source "postgres" { url = "postgres://nobody@127.0.0.1:1/none?connect_timeout=2" }`), "x.hcl")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	diags = CheckDatabase(ctx, cfg)
	if !diags.HasErrors() || !strings.Contains(diags[0].Summary, "Cannot connect") {
		t.Errorf("diags = %v", diags)
	}
}

// TestCheckDatabaseSlotElsewhere creates the config's slot in another
// database: validate --db must say so and what to do.
func TestCheckDatabaseSlotElsewhere(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	other := testenv.NewEmptyDB(t)
	slot := testenv.Name(t, "slot")
	other.Exec(t, `SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, slot)
	t.Cleanup(func() { other.Exec(t, `SELECT pg_drop_replication_slot($1)`, slot) })
	src := `source "postgres" {
  url  = "` + db.URL + `"
  slot = "` + slot + `"
}
event "contact.created" {
  table = "contacts"
  on    = ["insert"]
}
`
	cfg, diags := checkSource(t, src)
	if len(diags) != 1 || diags[0].Severity != hcl.DiagError {
		t.Fatalf("want one error, got %s", diags.Error())
	}
	for _, want := range []string{
		`Replication slot "` + slot + `" belongs to database "` + other.Name + `"`,
		`connects to database "` + db.Name + `"`,
		"Set source.slot to a name no other tool uses",
		"SELECT pg_drop_replication_slot('" + slot + "');",
	} {
		if !strings.Contains(diags[0].Detail, want) {
			t.Errorf("detail lacks %q:\n%s", want, diags[0].Detail)
		}
	}

	// The same slot name in its own database is fine.
	cfg.Source.URL = other.URL
	cfg.Events = nil
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if diags := CheckDatabase(ctx, cfg); diags.HasErrors() {
		t.Errorf("slot in its own database: %s", diags.Error())
	}
}

// checkSource parses the config src and checks it against its database.
func checkSource(t *testing.T, src string) (*Config, hcl.Diagnostics) {
	t.Helper()
	cfg, diags := Parse([]byte(src), "db.hcl")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return cfg, CheckDatabase(ctx, cfg)
}
