package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/walhook/walhook/testenv"
)

// TestValidateReplicaIdentity: validate --db refuses a rule that wants
// updates of a table without a primary key, saying what to do and where
// the rule is; accepts one that wants its inserts only; and points at
// (file:line) a rule whose table does not exist.
func TestValidateReplicaIdentity(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	db.Exec(t, `CREATE TABLE nopk (id int, v text); CREATE TABLE audit (id int, v text)`)
	write := func(events string) string {
		path := filepath.Join(t.TempDir(), "walhook.hcl")
		src := `source "postgres" { url = "` + db.URL + `" }
` + events + `
endpoint "crm" {
  url    = "https://crm.example.com"
  events = ["*"]
  secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
}
`
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}

	insertsOnly := write(`event "audit.added" {
  table = "audit"
  on    = ["insert", "read"]
}`)
	code, out, errOut := walhook(context.Background(), "validate", "-c", insertsOnly, "--db")
	if code != 0 || !strings.Contains(out, "(database checked)") {
		t.Fatalf("rule on inserts only: exit %d, stdout %q:\n%s", code, out, errOut)
	}

	updates := write(`event "audit.added" {
  table = "audit"
  on    = ["insert"]
}
event "nopk.changed" {
  table = "nopk"
  on    = ["insert", "update"]
}`)
	code, _, errOut = walhook(context.Background(), "validate", "-c", updates, "--db")
	if code != 1 {
		t.Fatalf("rule on updates: exit %d, want 1:\n%s", code, errOut)
	}
	for _, want := range []string{
		updates + ":7:11: error: Table has no replica identity",
		`Table public.nopk (read by event "nopk.changed" (` + updates + `:6))`,
		"add a primary key",
		"ALTER TABLE public.nopk REPLICA IDENTITY FULL;",
		`restrict its rules to on = ["insert", "truncate", "read"]`,
		updates + ": 1 error(s)",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("output lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "audit") {
		t.Errorf("the inserts-only rule on audit is reported:\n%s", errOut)
	}

	missing := write(`event "gone.added" {
  table = "gone"
  on    = ["insert"]
}`)
	code, _, errOut = walhook(context.Background(), "validate", "-c", missing, "--db")
	if code != 1 {
		t.Fatalf("rule on a missing table: exit %d, want 1:\n%s", code, errOut)
	}
	for _, want := range []string{missing + ":3:11: error: Table not found", "There is no table public.gone", `3:   table = "gone"`} {
		if !strings.Contains(errOut, want) {
			t.Errorf("output lacks %q:\n%s", want, errOut)
		}
	}
}
