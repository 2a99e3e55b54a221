package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/pgcluster"
)

type bench struct {
	o          options
	work       string
	self       string
	cluster    *pgcluster.Cluster
	postmaster int
	seq        int
	table      table
	// receiver is the kind of receiver of the scenario running: http,
	// https-h1 or https-h2.
	receiver string
	// share is the delivery.share of the scenario running; empty: the
	// default (not written to the config).
	share string
}

// run is one scenario's database, receiver and walhook.
type runEnv struct {
	b        *bench
	name     string
	db       string // database URL
	pool     *pgxpool.Pool
	slot     string
	recv     *exec.Cmd
	recvAddr string
	walhook  *exec.Cmd
	cfgPath  string
	secrets  map[string]string
	// caFile is the HTTPS receiver's certificate, trusted by walhook.
	caFile string
}

func newSecret() string {
	var k [32]byte
	_, _ = rand.Read(k[:])
	return "whsec_" + base64.StdEncoding.EncodeToString(k[:])
}

// setup creates a database with the sample schema, its slot and
// publication, and starts a receiver with receiverArgs knowing secrets.
func (b *bench) setup(ctx context.Context, secrets map[string]string, receiverArgs ...string) (*runEnv, error) {
	b.seq++
	var rnd [3]byte
	_, _ = rand.Read(rnd[:])
	name := fmt.Sprintf("bench%d_%s", b.seq, hex.EncodeToString(rnd[:]))
	if err := b.cluster.CreateDatabase(ctx, name); err != nil {
		return nil, err
	}
	env := &runEnv{b: b, name: name, db: b.cluster.DatabaseURL(name), slot: name, secrets: secrets}
	pool, err := pgxpool.New(ctx, env.db)
	if err != nil {
		return nil, err
	}
	env.pool = pool
	if _, err := pool.Exec(ctx, pgcluster.Schema); err != nil {
		return nil, fmt.Errorf("loading the schema: %w", err)
	}
	if t := b.table; t.create != "" {
		if _, err := pool.Exec(ctx, t.create); err != nil {
			return nil, fmt.Errorf("creating table %s: %w", t.name, err)
		}
	}
	if err := cdc.Prepare(ctx, env.db, cdc.ReaderConfig{URL: env.db, Slot: env.slot, Publication: env.slot, Tables: []string{"public." + b.table.name}}); err != nil {
		return nil, err
	}
	if secrets != nil {
		if err := env.startReceiver(receiverArgs...); err != nil {
			return nil, err
		}
	}
	return env, nil
}

func (e *runEnv) startReceiver(args ...string) error {
	path := filepath.Join(e.b.work, e.name+"-secrets.json")
	raw, _ := json.Marshal(e.secrets)
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return err
	}
	if e.tls() {
		e.caFile = filepath.Join(e.b.work, e.name+"-ca.pem")
		args = append(args, "-tls", strings.TrimPrefix(e.b.receiver, "https-"), "-ca-out", e.caFile)
	}
	e.recv = exec.Command(e.b.self, append([]string{"receive", "-secrets", path}, args...)...)
	e.recv.Stderr = os.Stderr
	out, err := e.recv.StdoutPipe()
	if err != nil {
		return err
	}
	if err := e.recv.Start(); err != nil {
		return fmt.Errorf("starting the receiver: %w", err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return fmt.Errorf("reading the receiver's address: %w", err)
	}
	e.recvAddr = strings.TrimSpace(line)
	go func() { _, _ = io.Copy(io.Discard, out) }()
	return nil
}

// tls reports whether the receiver serves HTTPS.
func (e *runEnv) tls() bool { return e.b.receiver != "" && e.b.receiver != "http" }

// hookURL is the receiver's URL for the endpoint named name.
func (e *runEnv) hookURL(name string) string {
	if e.tls() {
		return "https://" + e.recvAddr + "/hook/" + name
	}
	return "http://" + e.recvAddr + "/hook/" + name
}

// config writes the walhook config: one event, one endpoint "bench" at
// url with default settings, and extra HCL.
func (e *runEnv) config(url, extra string) error {
	src := fmt.Sprintf(`source "postgres" {
  url         = %q
  slot        = %q
  publication = %q
}
event %q {
  table = %q
  on    = ["insert"]
}
endpoint "bench" {
  url    = %q
  events = ["*"]
  secret = %q
  %s
}
%s`, e.db, e.slot, e.slot, e.b.table.event, e.b.table.name, url, e.secrets["bench"], e.b.o.endpoint+e.batchBlock(), extra)
	var delivery string
	if e.caFile != "" {
		delivery += fmt.Sprintf("  ca_file = %q\n", e.caFile)
	}
	if e.b.share != "" {
		delivery += fmt.Sprintf("  share = %q\n", e.b.share)
	}
	if h := e.b.o.http2; h != "" {
		delivery += "  http2 = " + h + "\n"
	}
	if delivery != "" {
		src += "delivery {\n" + delivery + "}\n"
	}
	e.cfgPath = filepath.Join(e.b.work, e.name+".hcl")
	return os.WriteFile(e.cfgPath, []byte(src), 0o600)
}

// batchBlock is the bench endpoint's batch block for -batch; empty without.
func (e *runEnv) batchBlock() string {
	if e.b.o.batch <= 0 {
		return ""
	}
	return fmt.Sprintf("\n  batch {\n    max_events = %d\n  }", e.b.o.batch)
}

// startWalhook runs `walhook run` on the config.
func (e *runEnv) startWalhook() error {
	e.walhook = exec.Command(e.b.o.binary, "run", "-c", e.cfgPath, "--log-level", e.b.o.logLevel)
	logf, err := os.Create(e.logPath())
	if err != nil {
		return err
	}
	e.walhook.Stderr = logf
	e.walhook.Env = os.Environ()
	e.walhook.Env = append(e.walhook.Env, strings.Fields(e.b.o.walhookEnv)...)
	if e.b.o.pprofAddr != "" {
		e.walhook.Env = append(e.walhook.Env, "WALHOOK_PPROF_ADDR="+e.b.o.pprofAddr)
	}
	return e.walhook.Start()
}

// logPath is where walhook's log goes.
func (e *runEnv) logPath() string {
	dir := e.b.o.logDir
	if dir == "" {
		dir = e.b.work
	}
	return filepath.Join(dir, e.name+".log")
}

// stop ends walhook and the receiver and drops the database.
func (e *runEnv) stop(ctx context.Context) {
	for _, c := range []*exec.Cmd{e.walhook, e.recv} {
		if c != nil && c.Process != nil {
			_ = c.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = c.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(40 * time.Second):
				_ = c.Process.Kill()
				<-done
			}
		}
	}
	if e.walhook != nil {
		if tail := logTail(e.logPath()); tail != "" {
			fmt.Fprintf(os.Stderr, "walhook log (%s), last lines:\n%s\n", e.name, tail)
		}
	}
	e.pool.Close()
	if err := e.b.cluster.DropDatabase(ctx, e.name); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
	}
}

func logTail(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

// backlog inserts n rows of the -table, perTx per transaction.
func (e *runEnv) backlog(ctx context.Context, n, perTx int) error {
	for done := 0; done < n; done += perTx {
		k := min(perTx, n-done)
		if _, err := e.pool.Exec(ctx, e.b.table.backlog, done, done+k-1); err != nil {
			return fmt.Errorf("inserting the backlog: %w", err)
		}
	}
	return nil
}

// waitReceived waits until the receiver verified n deliveries.
func (e *runEnv) waitReceived(ctx context.Context, n int, timeout time.Duration) (receiverStats, error) {
	return e.waitReceivedOf(ctx, "", n, timeout)
}

// waitReceivedOf waits until the receiver verified n deliveries of the
// event type typ (of any type when it is empty).
func (e *runEnv) waitReceivedOf(ctx context.Context, typ string, n int, timeout time.Duration) (receiverStats, error) {
	var s receiverStats
	base, client, err := e.receiverControl()
	if err != nil {
		return s, err
	}
	u := fmt.Sprintf("%s/wait?n=%d&timeout=%s&type=%s", base, n, timeout, url.QueryEscape(typ))
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := client.Do(req)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return s, err
	}
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("%w: %d of %d deliveries within %s (%d failed verification)", errIncomplete, s.Received, n, timeout, s.Bad)
	}
	if s.Bad > 0 {
		return s, fmt.Errorf("%d deliveries failed verification", s.Bad)
	}
	return s, nil
}

// receiverControl returns the receiver's base URL and a client for it
// (trusting its certificate when it serves HTTPS).
func (e *runEnv) receiverControl() (string, *http.Client, error) {
	if !e.tls() {
		return "http://" + e.recvAddr, http.DefaultClient, nil
	}
	pem, err := os.ReadFile(e.caFile)
	if err != nil {
		return "", nil, err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
	return "https://" + e.recvAddr, &http.Client{Transport: tr}, nil
}

// errIncomplete is a scenario whose deliveries did not all arrive in time.
var errIncomplete = errors.New("incomplete")

// meter takes CPU readings of every process at the start of a measurement.
type meter struct {
	e          *runEnv
	start      time.Time
	load       string
	walhook0   time.Duration
	receiver0  time.Duration
	postgres0  time.Duration
	walhookRSS *rssWatch
}

func (e *runEnv) startMeter() *meter {
	m := &meter{e: e, start: time.Now(), load: loadavg()}
	if e.walhook != nil {
		m.walhook0, _, _ = cpuTimes(e.walhook.Process.Pid)
		m.walhookRSS = watchRSS(e.walhook.Process.Pid, 200*time.Millisecond)
	}
	if e.recv != nil {
		m.receiver0, _, _ = cpuTimes(e.recv.Process.Pid)
	}
	m.postgres0 = treeCPU(e.b.postmaster)
	return m
}

// finish reads the CPU and RSS figures for events delivered since start.
func (m *meter) finish(events int) result {
	r := result{events: events, took: time.Since(m.start)}
	if m.e.walhook != nil {
		w, _, _ := cpuTimes(m.e.walhook.Process.Pid)
		r.walhook = w - m.walhook0
		r.rssMB = m.walhookRSS.Stop()
	}
	if m.e.recv != nil {
		r.hasReceiver = true
		c, _, _ := cpuTimes(m.e.recv.Process.Pid)
		r.receiver = c - m.receiver0
		r.recvMB = float64(statusKB(m.e.recv.Process.Pid, "VmHWM")) / 1024
	}
	r.postgres = treeCPU(m.e.b.postmaster) - m.postgres0
	r.load = m.load + " → " + loadavg()
	return r
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
