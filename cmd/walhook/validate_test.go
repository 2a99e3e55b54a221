package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/walhook/walhook/testenv"
)

func setExampleEnv(t *testing.T, databaseURL string) {
	t.Setenv("DATABASE_URL", databaseURL)
	t.Setenv("WALHOOK_ADMIN_TOKEN", "test-admin-token-0123456789")
	t.Setenv("CRM_WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	t.Setenv("LEGACY_SECRET", "legacy-secret-0123456789")
}

func TestValidateExample(t *testing.T) {
	setExampleEnv(t, "postgres://localhost/crm")
	var out, errOut bytes.Buffer
	code := validate([]string{"-c", "../../config.example.hcl"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, errOut.String())
	}
	want := "ok: 5 events, 2 endpoints, tables: public.contacts, public.deals, public.invoices\n"
	if out.String() != want {
		t.Errorf("stdout = %q, want %q", out.String(), want)
	}
}

func TestValidateReportsErrors(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "bad.hcl")
	src := `source "postgres" { url = "postgres://x/y" }
event "deal.won" {
  table = "deals"
  on    = ["update"]
  when  = old.stage != neww.stage
}
endpoint "crm" {
  url    = "https://crm.example.com"
  events = ["deal.*"]
  secret = "whsec_short"
}
`
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := validate([]string{"-c", path}, &out, &errOut); code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, errOut.String())
	}
	got := errOut.String()
	for _, want := range []string{
		path + ":5:24: error: Unknown variable",
		`5:   when  = old.stage != neww.stage`,
		`There is no variable named "neww"`,
		path + ":10:12: error: Malformed secret",
		path + ": 2 error(s)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if out.Len() != 0 {
		t.Errorf("stdout = %q", out.String())
	}
}

func TestValidateDatabase(t *testing.T) {
	db := testenv.NewDB(t)
	setExampleEnv(t, db.URL)
	var out, errOut bytes.Buffer
	if code := validate([]string{"-c", "../../config.example.hcl", "--db"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d:\n%s", code, errOut.String())
	}
	if !strings.HasPrefix(out.String(), "ok: 5 events") || !strings.Contains(out.String(), "(database checked)") {
		t.Errorf("stdout = %q", out.String())
	}

	db.Exec(t, `ALTER TABLE deals REPLICA IDENTITY DEFAULT; DROP TABLE invoices`)
	out.Reset()
	errOut.Reset()
	if code := validate([]string{"-c", "../../config.example.hcl", "--db"}, &out, &errOut); code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, errOut.String())
	}
	for _, want := range []string{
		"There is no table public.invoices",
		"ALTER TABLE public.deals REPLICA IDENTITY FULL;",
		"warning: Table needs REPLICA IDENTITY FULL",
	} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, errOut.String())
		}
	}
}
