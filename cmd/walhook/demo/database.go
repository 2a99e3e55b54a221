package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walhook/walhook/internal/pgcluster"
)

// database is the demo's Postgres database: on a throwaway cluster the
// demo started, or a database of its own on the server it was given.
type database struct {
	URL     string
	Name    string
	cluster *pgcluster.Cluster
	owned   bool // the cluster is ours: stop it at the end
}

// demoDatabase returns a name for the database (and slot) the demo creates
// on a server it is given: unique, so that demos may run side by side.
func demoDatabase() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return "walhook_demo_" + hex.EncodeToString(b[:])
}

// openDatabase starts a throwaway cluster (or uses serverURL), creates the
// demo database and loads the sample CRM schema into it.
func openDatabase(ctx context.Context, serverURL string, out io.Writer) (*database, error) {
	started := time.Now()
	db := &database{Name: "crm"}
	if serverURL == "" {
		// Not cut short by Ctrl-C: a pg_ctl killed mid-start could leave a
		// server running with nobody to stop it. Stopped below instead.
		startCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		c, err := pgcluster.Start(startCtx, pgcluster.Options{})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("starting a throwaway Postgres: %w", err)
		}
		db.cluster, db.owned = c, true
		if ctx.Err() != nil {
			db.close()
			return nil, ctx.Err()
		}
		fmt.Fprintf(out, "  postgres   throwaway cluster in %s (port %d), started in %s\n",
			c.Dir(), c.Port(), time.Since(started).Round(100*time.Millisecond))
	} else {
		db.cluster, db.Name = pgcluster.External(serverURL), demoDatabase()
		fmt.Fprintf(out, "  postgres   %s: creating database %s there (dropped at the end)\n", redact(serverURL), db.Name)
	}
	if err := db.cluster.CreateDatabase(ctx, db.Name); err != nil {
		if db.owned {
			db.close()
		}
		return nil, fmt.Errorf("creating the demo database: %w", err)
	}
	db.URL = db.cluster.DatabaseURL(db.Name)
	conn, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		db.close()
		return nil, fmt.Errorf("connecting to the demo database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var walLevel string
	if err := conn.QueryRow(ctx, "SHOW wal_level").Scan(&walLevel); err != nil {
		db.close()
		return nil, fmt.Errorf("reading wal_level: %w", err)
	}
	if walLevel != "logical" {
		db.close()
		return nil, fmt.Errorf("the server's wal_level is %q: walhook needs wal_level = logical (set it in postgresql.conf and restart Postgres)", walLevel)
	}
	if _, err := conn.Exec(ctx, pgcluster.Schema); err != nil {
		db.close()
		return nil, fmt.Errorf("loading the sample schema: %w", err)
	}
	fmt.Fprintf(out, "  schema     database %s: contacts, deals, invoices (REPLICA IDENTITY FULL), internal/pgcluster/schema.sql\n", db.Name)
	return db, nil
}

// close drops the demo database from a given server, or stops the
// throwaway cluster and removes its files.
func (db *database) close() error {
	if db.owned {
		return db.cluster.Stop()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return db.cluster.DropDatabase(ctx, db.Name)
}

// psqlCommand is a command line that connects psql to the demo database.
func (db *database) psqlCommand() string {
	psql := "psql"
	if _, err := exec.LookPath("psql"); err != nil {
		if dir, err := pgcluster.FindBinaries(); err == nil {
			psql = filepath.Join(dir, "psql")
		}
	}
	return fmt.Sprintf("%s '%s'", psql, redact(db.URL))
}

// redact hides the password of a postgres:// URL.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, ok := u.User.Password(); !ok {
		return s
	}
	u.User = url.UserPassword(u.User.Username(), "xxxxx")
	return u.String()
}
