package relay_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/walhook/walhook/relay"
)

// TestLoadConfig: an embedding program can load the reference config, and
// a broken one is refused with the file, line and column of the mistake.
func TestLoadConfig(t *testing.T) {
	for k, v := range map[string]string{
		"DATABASE_URL":        "postgres://walhook@127.0.0.1:5432/app",
		"CRM_WEBHOOK_SECRET":  "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		"LEGACY_SECRET":       "a-shared-secret",
		"WALHOOK_ADMIN_TOKEN": "an-admin-token",
	} {
		t.Setenv(k, v)
	}
	cfg, err := relay.LoadConfig(filepath.Join("..", "config.example.hcl"))
	if err != nil {
		t.Fatalf("config.example.hcl: %v", err)
	}
	if len(cfg.Endpoints) == 0 {
		t.Fatal("config.example.hcl loaded with no endpoints")
	}

	bad := filepath.Join(t.TempDir(), "bad.hcl")
	src := "source \"postgres\" {\n  url = \"postgres://x\"\n}\nevent \"a.b\" {\n  table = \"contacts\"\n  on    = [\"upsert\"]\n}\n"
	if err := os.WriteFile(bad, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = relay.LoadConfig(bad)
	if err == nil {
		t.Fatal("a rule with on = [\"upsert\"] was accepted")
	}
	if !strings.Contains(err.Error(), "bad.hcl:6") {
		t.Errorf("error does not name bad.hcl:6:\n%v", err)
	}
}
