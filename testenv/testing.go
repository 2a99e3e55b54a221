// Package testenv gives tests a Postgres database of their own on a
// throwaway cluster (internal/pgcluster) shared by the test binary.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/walhook/walhook/internal/pgcluster"
)

// EnvURL names the environment variable that points tests at an existing
// server instead of a throwaway one.
const EnvURL = "WALHOOK_TEST_DATABASE_URL"

// Schema is the sample CRM schema (contacts, deals, invoices) NewDB loads.
var Schema = pgcluster.Schema

// Cluster is the Postgres server the tests' databases live in.
type Cluster = pgcluster.Cluster

var (
	shared     *Cluster
	sharedErr  error
	sharedOnce sync.Once
	sharedMu   sync.Mutex
	started    bool
)

// Main runs a package's tests and stops the shared cluster afterwards. Call
// it from TestMain: func TestMain(m *testing.M) { testenv.Main(m) }.
// The cluster starts only when a test first asks for a database. The
// cleanups run after the tests, before the cluster stops.
func Main(m *testing.M, cleanups ...func()) {
	code := m.Run()
	for _, f := range cleanups {
		f()
	}
	sharedMu.Lock()
	if started && shared != nil {
		if err := shared.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	sharedMu.Unlock()
	os.Exit(code)
}

// Shared returns the cluster shared by every test of this test binary,
// starting it on first use (or using WALHOOK_TEST_DATABASE_URL).
func Shared(tb testing.TB) *Cluster {
	tb.Helper()
	sharedOnce.Do(func() {
		if url := os.Getenv(EnvURL); url != "" {
			shared = pgcluster.External(url)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		sharedMu.Lock()
		defer sharedMu.Unlock()
		shared, sharedErr = pgcluster.Start(ctx, pgcluster.Options{})
		started = sharedErr == nil
	})
	if sharedErr != nil {
		tb.Fatal(sharedErr)
	}
	return shared
}

// DB is a database of its own for one test.
type DB struct {
	// Name of the database.
	Name string
	// URL connects to it as a superuser (with the REPLICATION privilege).
	URL string
	// Pool is a connection pool to it, closed when the test ends.
	Pool *pgxpool.Pool
	// Cluster the database lives in.
	Cluster *Cluster
}

// NewDB creates a fresh database for tb with the sample CRM schema loaded,
// and drops it (with its replication slots) when tb ends.
func NewDB(tb testing.TB) *DB {
	tb.Helper()
	db := NewEmptyDB(tb)
	if _, err := db.Pool.Exec(context.Background(), Schema); err != nil {
		tb.Fatalf("testenv: loading schema: %v", err)
	}
	return db
}

// NewEmptyDB is NewDB without the sample schema.
func NewEmptyDB(tb testing.TB) *DB {
	tb.Helper()
	c := Shared(tb)
	name := Name(tb, "t")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.CreateDatabase(ctx, name); err != nil {
		tb.Fatal(err)
	}
	url := c.DatabaseURL(name)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		tb.Fatalf("testenv: connecting to %s: %v", name, err)
	}
	tb.Cleanup(func() {
		pool.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.DropDatabase(ctx, name); err != nil {
			tb.Errorf("testenv: %v", err)
		}
	})
	return &DB{Name: name, URL: url, Pool: pool, Cluster: c}
}

// Exec runs SQL in the test database and fails the test on error.
func (db *DB) Exec(tb testing.TB, sql string, args ...any) {
	tb.Helper()
	if _, err := db.Pool.Exec(context.Background(), sql, args...); err != nil {
		tb.Fatalf("exec %q: %v", sql, err)
	}
}

// Conn opens a plain connection to the test database, closed when tb ends.
func (db *DB) Conn(tb testing.TB) *pgx.Conn {
	tb.Helper()
	conn, err := pgx.Connect(context.Background(), db.URL)
	if err != nil {
		tb.Fatalf("testenv: connecting: %v", err)
	}
	tb.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9_]+`)

// Name returns a short unique identifier, safe for databases, slots and
// publications (which are cluster-wide), derived from the test's name.
func Name(tb testing.TB, prefix string) string {
	base := unsafeChars.ReplaceAllString(strings.ToLower(tb.Name()), "_")
	if len(base) > 30 {
		base = base[:30]
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return strings.Trim(prefix+"_"+base, "_") + "_" + hex.EncodeToString(b[:])
}
