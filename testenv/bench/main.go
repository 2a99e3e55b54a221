// Command bench measures what a user of walhook gets: it builds the
// walhook binary, starts a throwaway Postgres (internal/pgcluster), runs `walhook run`
// with a default config (no concurrency set) against a receiver in its own
// process that verifies every signature with the official Standard
// Webhooks library, and reports events/s, microseconds of CPU per event of
// walhook, the receiver and all Postgres processes, and peak RSS.
//
//	go run ./testenv/bench                       # every scenario
//	go run ./testenv/bench -scenario drain       # one (drain, fanout, slow, ratelimited, latency, dead, backfill)
//	go run ./testenv/bench -scenario dead -dead-rows 1000000
//	go run ./testenv/bench -scenario drain -table wide  # 13-column rows
//	go run ./testenv/bench -scenario drain -receiver http,https-h1,https-h2
//	go run ./testenv/bench -scenario drain -table wide -batch 100  # 100 events per request
//	go run ./testenv/bench -scenario drain -share overflow,all  # docs/scaling.md
//
// Results go to stdout as Markdown table rows with the load average beside
// each: the machine may be shared, so compare runs made under similar load.
// docs/operations.md records results and how to read them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/walhook/walhook/internal/pgcluster"
)

type options struct {
	scenario string
	table    string
	// receivers lists the receivers each scenario runs against: http,
	// https-h1, https-h2.
	receivers string
	// shares lists the delivery.share values each scenario runs with;
	// empty: the default only.
	shares   string
	rows     int
	slowRows int
	rateRows int
	deadRows int
	latencyS int
	// backfillRows is the table size of the backfill scenario.
	backfillRows int
	binary       string
	pprofAddr    string
	walhookEnv   string
	logLevel     string
	logDir       string
	endpoint     string
	// batch, when > 0, gives the bench endpoint batch { max_events = batch }.
	batch int
	// http2, when set, is written as delivery.http2 ("true" or "false").
	http2   string
	timeout time.Duration
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "receive" {
		if err := runReceiver(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "receiver:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	flag.StringVar(&o.scenario, "scenario", "all", "drain, fanout, slow, ratelimited, latency, dead, backfill or all (comma-separated list allowed)")
	flag.StringVar(&o.receivers, "receiver", "http", "receivers to run each scenario against, comma-separated: http, https-h1 (self-signed TLS, HTTP/1.1), https-h2 (self-signed TLS, HTTP/2 offered); walhook trusts the certificate through delivery.ca_file")
	flag.StringVar(&o.shares, "share", "", `delivery.share values to run each scenario with, comma-separated: overflow, all (default: the config's default, not written)`)
	flag.StringVar(&o.table, "table", "contacts", "table the rows go to: contacts (the sample schema's) or wide (13 columns, 4 of them set)")
	flag.IntVar(&o.rows, "rows", 50_000, "drain: backlog rows (100 inserts per transaction)")
	flag.IntVar(&o.slowRows, "slow-rows", 20_000, "slow: backlog rows for the 50 ms endpoint")
	flag.IntVar(&o.rateRows, "rate-rows", 3_000, "ratelimited: backlog rows for the endpoint taking 200 requests/s")
	flag.IntVar(&o.deadRows, "dead-rows", 200_000, "dead: backlog rows drained to a dead endpoint (1000000 for the full figure)")
	flag.IntVar(&o.latencyS, "latency-seconds", 10, "latency: seconds of 1,000 rows/s")
	flag.IntVar(&o.backfillRows, "backfill-rows", 1_000_000, "backfill: rows in the table backfilled")
	flag.StringVar(&o.binary, "binary", "", "walhook binary to run (default: go build ./cmd/walhook)")
	flag.StringVar(&o.endpoint, "endpoint-attrs", "", `extra attributes of the "bench" endpoint, for experiments (e.g. "concurrency = 64"); results with it are not the default config`)
	flag.IntVar(&o.batch, "batch", 0, `send the "bench" endpoint's events in batches of up to this many (batch { max_events = N }, other fields default); 0: one event per request`)
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "longest wait for a scenario's deliveries; an unfinished scenario reports what arrived")
	flag.StringVar(&o.logLevel, "log-level", "warn", "walhook's --log-level")
	flag.StringVar(&o.logDir, "log-dir", "", "keep walhook's logs in this directory (default: a temporary one, removed at the end)")
	flag.StringVar(&o.pprofAddr, "pprof", "", "serve walhook's pprof on this address (WALHOOK_PPROF_ADDR), e.g. 127.0.0.1:6060")
	flag.StringVar(&o.http2, "http2", "", `delivery.http2 to write: "true" or "false" (default: the config's default, not written)`)
	flag.StringVar(&o.walhookEnv, "walhook-env", "", `extra environment of walhook alone, space separated, for experiments (e.g. "GOGC=400")`)
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.http2 != "" && o.http2 != "true" && o.http2 != "false" {
		return fmt.Errorf("-http2 is true or false, not %q", o.http2)
	}
	ctx := context.Background()
	tbl, err := tableNamed(o.table)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "walhook-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if err := os.Chmod(work, 0o755); err != nil {
		return err
	}
	if o.binary == "" {
		o.binary = filepath.Join(work, "walhook")
		fmt.Fprintln(os.Stderr, "building walhook…")
		if out, err := exec.Command("go", "build", "-o", o.binary, "./cmd/walhook").CombinedOutput(); err != nil {
			return fmt.Errorf("building walhook (run from the repository root): %w\n%s", err, out)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "starting Postgres…")
	cluster, err := pgcluster.Start(ctx, pgcluster.Options{})
	if err != nil {
		return err
	}
	defer cluster.Stop()
	postmaster, err := postmasterPID(cluster)
	if err != nil {
		return err
	}
	b := &bench{o: o, work: work, self: self, cluster: cluster, postmaster: postmaster, table: tbl}

	scenarios := map[string]func(context.Context) (result, error){
		"drain":       b.drain,
		"fanout":      b.fanout,
		"slow":        b.slow,
		"ratelimited": b.rateLimited,
		"latency":     b.latency,
		"dead":        b.dead,
		"backfill":    b.backfill,
	}
	order := []string{"drain", "fanout", "slow", "ratelimited", "latency", "dead", "backfill"}
	if o.scenario != "all" {
		order = strings.Split(o.scenario, ",")
	}
	receivers := strings.Split(o.receivers, ",")
	for _, rk := range receivers {
		if rk != "http" && rk != "https-h1" && rk != "https-h2" {
			return fmt.Errorf("unknown receiver %q (want http, https-h1 or https-h2)", rk)
		}
	}
	shares := []string{""}
	if o.shares != "" {
		shares = strings.Split(o.shares, ",")
		for _, sh := range shares {
			if sh != "overflow" && sh != "all" {
				return fmt.Errorf("unknown share %q (want overflow or all)", sh)
			}
		}
	}
	fmt.Println(resultHeader)
	for _, name := range order {
		fn, ok := scenarios[name]
		if !ok {
			return fmt.Errorf("unknown scenario %q", name)
		}
		for _, rk := range receivers {
			for _, share := range shares {
				b.receiver, b.share = rk, share
				fmt.Fprintf(os.Stderr, "scenario %s, receiver %s, share %q…\n", name, rk, share)
				res, err := fn(ctx)
				if err != nil {
					return fmt.Errorf("scenario %s (%s): %w", name, rk, err)
				}
				res.name = name
				if o.table != "contacts" {
					res.name += " " + o.table
				}
				if rk != "http" {
					res.name += " " + rk
				}
				if o.batch > 0 {
					res.name += fmt.Sprintf(" batch %d", o.batch)
				}
				if share != "" {
					res.name += " share=" + share
				}
				if o.http2 != "" {
					res.name += " http2=" + o.http2
				}
				fmt.Println(res.row())
			}
		}
	}
	return nil
}

// postmasterPID reads the first line of the cluster's postmaster.pid.
func postmasterPID(c *pgcluster.Cluster) (int, error) {
	b, err := os.ReadFile(filepath.Join(c.Dir(), "data", "postmaster.pid"))
	if err != nil {
		return 0, fmt.Errorf("reading postmaster.pid: %w", err)
	}
	var pid int
	if _, err := fmt.Sscanf(string(b), "%d", &pid); err != nil {
		return 0, errors.New("postmaster.pid holds no pid")
	}
	return pid, nil
}

// result is one scenario's figures.
type result struct {
	name     string
	events   int // deliveries verified by the receiver (or stored, for dead)
	took     time.Duration
	walhook  time.Duration // CPU
	receiver time.Duration
	postgres time.Duration
	rssMB    float64 // walhook peak
	recvMB   float64
	// hasReceiver is false when no receiver ran (dead).
	hasReceiver bool
	extra       string
	load        string // /proc/loadavg at the start and the end
}

// resultHeader heads the rows: CPU is in microseconds per event (user +
// system, from /proc), so runs on different machines compare by it.
const resultHeader = `| scenario | events | seconds | events/s | walhook CPU µs/event | receiver µs/event | postgres µs/event | walhook peak RSS MB | receiver RSS MB | notes | loadavg start → end |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |`

func (r result) row() string {
	perEvent := func(d time.Duration, measured bool) string {
		if r.events == 0 || !measured {
			return "–"
		}
		return fmt.Sprintf("%.1f", float64(d.Microseconds())/float64(r.events))
	}
	return fmt.Sprintf("| %s | %d | %.2f | %.0f | %s | %s | %s | %.0f | %.0f | %s | %s |",
		r.name, r.events, r.took.Seconds(), float64(r.events)/r.took.Seconds(),
		perEvent(r.walhook, true), perEvent(r.receiver, r.hasReceiver), perEvent(r.postgres, true), r.rssMB, r.recvMB, r.extra, r.load)
}
