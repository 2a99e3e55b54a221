package rules

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/config"
)

// exampleEnv are the variables config.example.hcl reads.
var exampleEnv = map[string]string{
	"DATABASE_URL":        "postgres://localhost/crm",
	"WALHOOK_ADMIN_TOKEN": "test-admin-token-0123456789",
	"CRM_WEBHOOK_SECRET":  "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
	"LEGACY_SECRET":       "legacy-secret-0123456789",
}

func TestMain(m *testing.M) {
	// The example config needs these; setting them here lets tests, the
	// fuzz target and the benchmark run in parallel.
	for k, v := range exampleEnv {
		os.Setenv(k, v)
	}
	goleak.VerifyTestMain(m)
}

func exampleFile(tb testing.TB) string {
	tb.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "config.example.hcl")
}

// exampleRules compiles config.example.hcl.
func exampleRules(tb testing.TB) (*Rules, *config.Config) {
	tb.Helper()
	cfg, diags := config.Load(exampleFile(tb))
	if diags.HasErrors() {
		tb.Fatalf("loading the example config: %s", diags.Error())
	}
	r, err := Compile(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return r, cfg
}

// compileSrc compiles a config made of the given event blocks.
func compileSrc(tb testing.TB, events string) (*Rules, *config.Config) {
	tb.Helper()
	src := `source "postgres" { url = "postgres://localhost/x" }` + "\n" + events
	cfg, diags := config.Parse([]byte(src), "test.hcl")
	if diags.HasErrors() {
		tb.Fatalf("parsing config: %s", diags.Error())
	}
	r, err := Compile(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return r, cfg
}

var commitTime = time.Date(2026, 11, 23, 14, 5, 6, 123456000, time.FixedZone("CET", 3600))

var contactColumns = []string{"id", "organization_id", "first_name", "last_name", "email", "phone", "assigned_to", "created_at", "updated_at"}
var dealColumns = []string{"id", "organization_id", "contact_id", "title", "amount", "stage", "assigned_to", "closed_at", "metadata"}

func contactRow(id int64, email string) map[string]any {
	return map[string]any{
		"id": id, "organization_id": int64(7), "first_name": "Ada", "last_name": "Lovelace",
		"email": email, "phone": nil, "assigned_to": int64(3),
		"created_at": "2026-11-23T13:00:00Z", "updated_at": "2026-11-23T13:00:00Z",
	}
}

func dealRow(id int64, stage string, closedAt any) map[string]any {
	return map[string]any{
		"id": id, "organization_id": int64(7), "contact_id": int64(1), "title": "Big deal",
		"amount": json.Number("12345678901234567.89"), "stage": stage, "assigned_to": nil,
		"closed_at": closedAt, "metadata": json.RawMessage(`{"plan": "pro", "seats": 12}`),
	}
}

func change(table string, op cdc.Op, newRow, oldRow map[string]any) *cdc.Change {
	cols := contactColumns
	if table == "deals" {
		cols = dealColumns
	}
	return &cdc.Change{
		Schema: "public", Table: table, Op: op, New: newRow, Old: oldRow,
		Columns: cols, Key: []string{"id"}, OldFull: oldRow != nil && len(oldRow) > 1,
		XID: 4242, CommitTime: commitTime, CommitLSN: 0x16B3748, EndLSN: 0x16B3780, Position: 2,
	}
}

func copyRow(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
