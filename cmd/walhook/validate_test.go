package main

import (
	"context"
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
	want := "ok: 5 events, 2 endpoints, tables: public.contacts, public.deals, public.invoices\n"
	for _, flag := range []string{"-c", "--config", "--config="} {
		args := []string{"validate", flag, "../../config.example.hcl"}
		if strings.HasSuffix(flag, "=") {
			args = []string{"validate", flag + "../../config.example.hcl"}
		}
		code, out, errOut := walhook(context.Background(), args...)
		if code != 0 {
			t.Fatalf("%v: exit %d:\n%s", args, code, errOut)
		}
		if out != want {
			t.Errorf("%v: stdout = %q, want %q", args, out, want)
		}
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
	code, out, got := walhook(context.Background(), "validate", "-c", path)
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, got)
	}
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
	if out != "" {
		t.Errorf("stdout = %q", out)
	}
}

func TestValidateDatabase(t *testing.T) {
	db := testenv.NewDB(t)
	setExampleEnv(t, db.URL)
	code, out, errOut := walhook(context.Background(), "validate", "-c", "../../config.example.hcl", "--db")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, errOut)
	}
	if !strings.HasPrefix(out, "ok: 5 events") || !strings.Contains(out, "(database checked)") {
		t.Errorf("stdout = %q", out)
	}

	db.Exec(t, `ALTER TABLE deals REPLICA IDENTITY DEFAULT; DROP TABLE invoices`)
	code, _, errOut = walhook(context.Background(), "validate", "--config", "../../config.example.hcl", "--db")
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, errOut)
	}
	for _, want := range []string{
		"There is no table public.invoices",
		"ALTER TABLE public.deals REPLICA IDENTITY FULL;",
		"warning: Table needs REPLICA IDENTITY FULL",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("output lacks %q:\n%s", want, errOut)
		}
	}
}
