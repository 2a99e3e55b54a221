package testenv_test

import (
	"context"
	"testing"

	"github.com/walhook/walhook/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestNewDBHasLogicalWALAndSchema(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	ctx := context.Background()
	var level string
	if err := db.Pool.QueryRow(ctx, "SHOW wal_level").Scan(&level); err != nil {
		t.Fatal(err)
	}
	if level != "logical" {
		t.Fatalf("wal_level = %q, want logical", level)
	}
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_name IN ('contacts','deals','invoices')`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("found %d of the 3 sample tables", n)
	}
}

func TestDatabasesAreSeparate(t *testing.T) {
	t.Parallel()
	a, b := testenv.NewDB(t), testenv.NewDB(t)
	if a.Name == b.Name {
		t.Fatalf("two tests got the same database %q", a.Name)
	}
	a.Exec(t, "INSERT INTO contacts (organization_id, first_name) VALUES (1, 'Ada')")
	var n int
	if err := b.Pool.QueryRow(context.Background(), "SELECT count(*) FROM contacts").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("database b sees %d rows written to a", n)
	}
}
