// Package pgcluster starts throwaway Postgres clusters for the demo, tests
// and benchmarks: initdb and pg_ctl into a temporary directory, listening on
// a free port of 127.0.0.1, with wal_level=logical. It holds the sample CRM
// schema they load. It does not import testing, so the walhook binary (its
// demo) can use it; the test helpers built on it are in testenv.
package pgcluster

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Schema is the sample CRM schema (contacts, deals, invoices) of the demo,
// the tests and testenv/docker-compose.yml.
//
//go:embed schema.sql
var Schema string

// Cluster is a running Postgres server that Start started, or an existing
// one External names.
type Cluster struct {
	// URL connects to the cluster's "postgres" database as a superuser.
	URL string

	dir      string // data directory root; empty when the cluster is external
	bin      string
	asUser   string // run pg_ctl as this user (when we are root)
	port     int
	watchdog *os.Process
}

// Options tune a cluster started by Start.
type Options struct {
	// Port to listen on; 0 picks a free one.
	Port int
	// Settings are extra postgresql.conf settings.
	Settings map[string]string
}

// Start starts a throwaway cluster. It stops by itself (and removes its
// files) if this process dies without calling Stop.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	bin, err := FindBinaries()
	if err != nil {
		return nil, err
	}
	c := &Cluster{bin: bin}
	if os.Geteuid() == 0 {
		if _, err := user.Lookup("postgres"); err != nil {
			return nil, errors.New("pgcluster: running as root, and Postgres refuses root: create a 'postgres' user (apt-get install postgresql creates one)")
		}
		c.asUser = "postgres"
	}
	c.dir, err = os.MkdirTemp("", "walhook-pg-")
	if err != nil {
		return nil, fmt.Errorf("pgcluster: creating temp dir: %w", err)
	}
	if err := c.chown(c.dir); err != nil {
		c.cleanupDir()
		return nil, err
	}
	data := filepath.Join(c.dir, "data")
	if out, err := c.pgCommand(ctx, "initdb", "-D", data, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync").CombinedOutput(); err != nil {
		c.cleanupDir()
		return nil, fmt.Errorf("pgcluster: initdb: %w\n%s", err, out)
	}

	settings := map[string]string{
		"wal_level":                 "logical",
		"max_replication_slots":     "100",
		"max_wal_senders":           "100",
		"max_connections":           "400",
		"fsync":                     "off",
		"synchronous_commit":        "off",
		"full_page_writes":          "off",
		"listen_addresses":          "'127.0.0.1'",
		"unix_socket_directories":   "'" + c.dir + "'",
		"shared_buffers":            "128MB",
		"max_wal_size":              "4GB",
		"wal_sender_timeout":        "60s",
		"logical_decoding_work_mem": "64MB",
	}
	for k, v := range opts.Settings {
		settings[k] = v
	}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var conf strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&conf, "%s = %s\n", k, settings[k])
	}

	for attempt := 0; ; attempt++ {
		c.port = opts.Port
		if c.port == 0 {
			if c.port, err = freePort(); err != nil {
				c.cleanupDir()
				return nil, err
			}
		}
		portConf := conf.String() + fmt.Sprintf("port = %d\n", c.port)
		if err := os.WriteFile(filepath.Join(data, "postgresql.auto.conf"), []byte(portConf), 0o600); err != nil {
			c.cleanupDir()
			return nil, fmt.Errorf("pgcluster: writing settings: %w", err)
		}
		if err := c.chown(filepath.Join(data, "postgresql.auto.conf")); err != nil {
			c.cleanupDir()
			return nil, err
		}
		out, err := c.pgCommand(ctx, "pg_ctl", "start", "-w", "-t", "60", "-D", data, "-l", filepath.Join(c.dir, "postgres.log")).CombinedOutput()
		if err == nil {
			break
		}
		log, _ := os.ReadFile(filepath.Join(c.dir, "postgres.log"))
		if attempt < 3 && opts.Port == 0 && strings.Contains(string(log), "could not bind") {
			continue // someone took the port between freePort and start
		}
		c.cleanupDir()
		return nil, fmt.Errorf("pgcluster: pg_ctl start: %w\n%s\n%s", err, out, log)
	}
	c.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
	if err := c.startWatchdog(); err != nil {
		_ = c.Stop()
		return nil, err
	}
	return c, nil
}

// External returns a Cluster for an existing server; Stop leaves it running.
func External(url string) *Cluster { return &Cluster{URL: url} }

// Port is the port the cluster listens on (0 for an external cluster).
func (c *Cluster) Port() int { return c.port }

// Dir is the cluster's temporary directory (empty for an external cluster).
func (c *Cluster) Dir() string { return c.dir }

// Stop shuts the cluster down and removes its files. For an external
// cluster it does nothing.
func (c *Cluster) Stop() error {
	if c.dir == "" {
		return nil
	}
	if c.watchdog != nil {
		_ = c.watchdog.Kill()
		_, _ = c.watchdog.Wait()
		c.watchdog = nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := c.pgCommand(ctx, "pg_ctl", "stop", "-w", "-m", "immediate", "-D", filepath.Join(c.dir, "data")).CombinedOutput()
	c.cleanupDir()
	if err != nil {
		return fmt.Errorf("pgcluster: pg_ctl stop: %w\n%s", err, out)
	}
	return nil
}

// Restart stops the server immediately (as a crash would) and starts it again
// on the same port. Tests use it to check recovery from a database restart.
func (c *Cluster) Restart(ctx context.Context) error {
	if c.dir == "" {
		return errors.New("pgcluster: cannot restart an external cluster")
	}
	data := filepath.Join(c.dir, "data")
	if out, err := c.pgCommand(ctx, "pg_ctl", "stop", "-w", "-m", "immediate", "-D", data).CombinedOutput(); err != nil {
		return fmt.Errorf("pgcluster: pg_ctl stop: %w\n%s", err, out)
	}
	if out, err := c.pgCommand(ctx, "pg_ctl", "start", "-w", "-t", "60", "-D", data, "-l", filepath.Join(c.dir, "postgres.log")).CombinedOutput(); err != nil {
		return fmt.Errorf("pgcluster: pg_ctl start: %w\n%s", err, out)
	}
	return nil
}

// DatabaseURL returns the URL of database name on this cluster.
func (c *Cluster) DatabaseURL(name string) string {
	cfg, err := pgx.ParseConfig(c.URL)
	if err != nil {
		panic(fmt.Sprintf("pgcluster: cluster URL %q does not parse: %v", c.URL, err))
	}
	return replaceDatabase(c.URL, cfg.Database, name)
}

// CreateDatabase creates database name (dropping any old one of that name).
func (c *Cluster) CreateDatabase(ctx context.Context, name string) error {
	conn, err := pgx.Connect(ctx, c.URL)
	if err != nil {
		return fmt.Errorf("pgcluster: connecting to %s: %w", redact(c.URL), err)
	}
	defer conn.Close(ctx)
	if err := dropDatabase(ctx, conn, name); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("pgcluster: creating database %s: %w", name, err)
	}
	return nil
}

// DropDatabase drops database name with its replication slots, ending any
// session still connected to it.
func (c *Cluster) DropDatabase(ctx context.Context, name string) error {
	conn, err := pgx.Connect(ctx, c.URL)
	if err != nil {
		return fmt.Errorf("pgcluster: connecting to %s: %w", redact(c.URL), err)
	}
	defer conn.Close(ctx)
	return dropDatabase(ctx, conn, name)
}

func dropDatabase(ctx context.Context, conn *pgx.Conn, name string) error {
	// Slots live in the cluster, tied to a database: DROP DATABASE refuses
	// while one exists, and dropping one refuses while a walsender uses it.
	var lastErr error
	for attempt := 0; attempt < 50; attempt++ {
		_, _ = conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, name)
		_, lastErr = conn.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1`, name)
		if lastErr == nil {
			_, lastErr = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
		}
		if lastErr == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("pgcluster: dropping database %s: %w", name, lastErr)
}

// FindBinaries returns the directory holding initdb and pg_ctl: from PATH,
// or the newest /usr/lib/postgresql/*/bin.
func FindBinaries() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if _, err := exec.LookPath("initdb"); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("pgcluster: no Postgres server binaries (initdb, pg_ctl) on PATH or under /usr/lib/postgresql/*/bin: install them, e.g. `apt-get install -y postgresql` on Debian, or use an existing server with wal_level=logical (tests: WALHOOK_TEST_DATABASE_URL; the demo: --database-url)")
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func (c *Cluster) pgCommand(ctx context.Context, name string, args ...string) *exec.Cmd {
	path := filepath.Join(c.bin, name)
	var cmd *exec.Cmd
	if c.asUser != "" {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", c.asUser, "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	// pg_ctl's server must not be in our process group: a Ctrl-C meant for
	// us would otherwise reach Postgres before we can stop it in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	return cmd
}

func (c *Cluster) chown(path string) error {
	if c.asUser == "" {
		return nil
	}
	u, err := user.Lookup(c.asUser)
	if err != nil {
		return fmt.Errorf("pgcluster: looking up user %s: %w", c.asUser, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(path, uid, gid); err != nil {
		return fmt.Errorf("pgcluster: chown %s: %w", path, err)
	}
	return nil
}

func (c *Cluster) cleanupDir() {
	if c.dir != "" {
		_ = os.RemoveAll(c.dir)
	}
}

// startWatchdog starts a small shell process that stops the cluster and
// removes its files once this process is gone, however it ended (a test
// binary killed by a timeout never runs its cleanup).
func (c *Cluster) startWatchdog() error {
	data := filepath.Join(c.dir, "data")
	stop := filepath.Join(c.bin, "pg_ctl") + " stop -m immediate -D " + shellQuote(data)
	if c.asUser != "" {
		stop = "runuser -u " + c.asUser + " -- " + stop
	}
	script := fmt.Sprintf(`while kill -0 %d 2>/dev/null; do sleep 1; done; %s >/dev/null 2>&1; rm -rf %s`, os.Getpid(), stop, shellQuote(c.dir))
	cmd := exec.Command("sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgcluster: starting watchdog: %w", err)
	}
	c.watchdog = cmd.Process
	return nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgcluster: finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// replaceDatabase swaps the database of a postgres:// URL or key=value DSN.
func replaceDatabase(url, old, name string) string {
	if strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://") {
		rest := url[strings.Index(url, "://")+3:]
		slash := strings.Index(rest, "/")
		q := ""
		if i := strings.Index(rest, "?"); i >= 0 {
			q = rest[i:]
			rest = rest[:i]
		}
		if slash >= 0 {
			rest = rest[:slash]
		}
		return url[:strings.Index(url, "://")+3] + rest + "/" + name + q
	}
	return url + " dbname=" + name
}

// redact hides a password in a URL for error messages.
func redact(url string) string {
	cfg, err := pgx.ParseConfig(url)
	if err != nil || cfg.Password == "" {
		return url
	}
	return strings.ReplaceAll(url, cfg.Password, "xxxxx")
}
