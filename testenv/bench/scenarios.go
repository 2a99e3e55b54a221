package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// drain: a backlog of rows (100 inserts per transaction) already in the
// WAL, timed from walhook's start to the last verified receipt.
func (b *bench) drain(ctx context.Context) (result, error) {
	return b.backlogScenario(ctx, b.o.rows, "")
}

// slow: an endpoint answering after 50 ms, on a backlog.
func (b *bench) slow(ctx context.Context) (result, error) {
	return b.backlogScenario(ctx, b.o.slowRows, "", "-delay", "50ms")
}

// rateLimited: an endpoint answering 429 (Retry-After: 1) beyond 200
// requests in a second of its clock; reports the share of 429s after its
// first 5 seconds.
func (b *bench) rateLimited(ctx context.Context) (result, error) {
	res, err := b.backlogScenario(ctx, b.o.rateRows, "", "-rate", "200")
	return res, err
}

func (b *bench) backlogScenario(ctx context.Context, rows int, extraHCL string, receiverArgs ...string) (result, error) {
	e, err := b.setup(ctx, map[string]string{"bench": newSecret()}, receiverArgs...)
	if err != nil {
		return result{}, err
	}
	defer e.stop(ctx)
	if err := e.config(e.hookURL("bench"), extraHCL); err != nil {
		return result{}, err
	}
	if err := e.backlog(ctx, rows, 100); err != nil {
		return result{}, err
	}
	if err := e.startWalhook(); err != nil {
		return result{}, err
	}
	m := e.startMeter()
	s, err := e.waitReceived(ctx, rows, b.o.timeout)
	res := m.finish(s.Received)
	res.extra = fmt.Sprintf("%d requests, %d refused (429)%s", s.Requests, s.Refused, protoNote(s))
	if errors.Is(err, errIncomplete) {
		res.extra = fmt.Sprintf("INCOMPLETE: %d of %d within %s; ", s.Received, rows, b.o.timeout) + res.extra
	} else if err != nil {
		return res, err
	}
	if n := s.OKAfter5s + s.RefusedAfter5s; n > 0 && s.Refused > 0 {
		res.extra += fmt.Sprintf("; after the first 5 s %.1f%% 429s", 100*float64(s.RefusedAfter5s)/float64(n))
	}
	return res, nil
}

// fanout: 100 webhooks registered through the admin API (each its own
// secret and URL) plus the config endpoint, then 1,000 rows inserted (100
// per transaction): 101,000 verified deliveries, timed from the first
// insert to the last receipt.
func (b *bench) fanout(ctx context.Context) (result, error) {
	const hooks, rows = 100, 1000
	secrets := map[string]string{"bench": newSecret()}
	for _, n := range hookNames(hooks) {
		secrets[n] = newSecret()
	}
	e, err := b.setup(ctx, secrets)
	if err != nil {
		return result{}, err
	}
	defer e.stop(ctx)
	admin, err := e.startWithAdmin(ctx, `
  allow_networks = ["127.0.0.0/8"]
  allow_http     = true`, "")
	if err != nil {
		return result{}, err
	}
	for _, n := range hookNames(hooks) {
		body, _ := json.Marshal(map[string]any{"url": e.hookURL(n), "events": []string{"*"}, "secret": secrets[n]})
		if err := admin.post(ctx, "/v1/webhooks", body); err != nil {
			return result{}, fmt.Errorf("registering webhook %s: %w", n, err)
		}
	}
	m := e.startMeter()
	if err := e.backlog(ctx, rows, 100); err != nil {
		return result{}, err
	}
	want := rows * (hooks + 1)
	s, err := e.waitReceived(ctx, want, b.o.timeout)
	res := m.finish(want)
	res.extra = fmt.Sprintf("%d requests%s", s.Requests, protoNote(s))
	return res, err
}

// protoNote says over which protocols the requests came, when not all
// over HTTP/1.1.
func protoNote(s receiverStats) string {
	if len(s.Protos) == 0 || (len(s.Protos) == 1 && s.Protos["HTTP/1.1"] > 0) {
		return ""
	}
	note := ""
	for _, p := range []string{"HTTP/1.1", "HTTP/2.0"} {
		if n := s.Protos[p]; n > 0 {
			note += fmt.Sprintf("; %d over %s", n, p)
		}
	}
	return note
}

// adminAPI is a running walhook's admin listener.
type adminAPI struct{ addr, token string }

// startWithAdmin writes the config with an admin block (its attributes
// beside listen and token) and extra HCL, starts walhook and waits until
// it is ready.
func (e *runEnv) startWithAdmin(ctx context.Context, attrs, extra string) (adminAPI, error) {
	addr, err := freeAddr()
	if err != nil {
		return adminAPI{}, err
	}
	a := adminAPI{addr: addr, token: newSecret()}
	if err := e.config(e.hookURL("bench"), fmt.Sprintf(`admin {
  listen = %q
  token  = %q
  %s
}
%s`, a.addr, a.token, attrs, extra)); err != nil {
		return adminAPI{}, err
	}
	if err := e.startWalhook(); err != nil {
		return adminAPI{}, err
	}
	return a, waitHTTP(ctx, "http://"+a.addr+"/readyz", time.Minute)
}

// post sends body to path and wants 201 Created.
func (a adminAPI) post(ctx context.Context, path string, body []byte) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+a.addr+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("POST %s: status %d", path, resp.StatusCode)
	}
	return nil
}

// waitHTTP polls url until it answers 200.
func waitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within %s", url, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// latency: 1,000 rows/s, one row per transaction committed synchronously
// by 4 writers, for latency-seconds; reports commit-to-delivery p50/p99
// (the body's timestamp is the commit time).
func (b *bench) latency(ctx context.Context) (result, error) {
	e, err := b.setup(ctx, map[string]string{"bench": newSecret()})
	if err != nil {
		return result{}, err
	}
	defer e.stop(ctx)
	if err := e.config(e.hookURL("bench"), ""); err != nil {
		return result{}, err
	}
	if err := e.startWalhook(); err != nil {
		return result{}, err
	}
	if err := e.waitSlotActive(ctx); err != nil {
		return result{}, err
	}
	const rate = 1000
	total := rate * b.o.latencyS
	m := e.startMeter()
	if _, err := e.writeLive(ctx, rate, total, nil); err != nil {
		return result{}, err
	}
	s, err := e.waitReceived(ctx, total, time.Minute)
	res := m.finish(total)
	res.extra = fmt.Sprintf("commit-to-delivery p50 %.1f ms, p99 %.1f ms, max %.1f ms", s.P50ms, s.P99ms, s.MaxMs)
	return res, err
}

// writeLive inserts rows of the -table at rate rows a second, one row per
// transaction committed synchronously by 4 writers, until it wrote total
// rows (when total > 0) or stop is closed; it returns how many it wrote.
func (e *runEnv) writeLive(ctx context.Context, rate, total int, stop <-chan struct{}) (int, error) {
	pcfg, err := pgxpool.ParseConfig(e.db)
	if err != nil {
		return 0, err
	}
	pcfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	writers, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return 0, err
	}
	defer writers.Close()
	work := make(chan int, rate)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				if _, err := writers.Exec(ctx, e.b.table.live, j); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	written := 0
loop:
	for total <= 0 || written < total {
		select {
		case <-stop:
			break loop
		case <-tick.C:
			work <- written
			written++
		}
	}
	tick.Stop()
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return written, fmt.Errorf("writing: %w", err)
	default:
	}
	return written, nil
}

func (e *runEnv) waitSlotActive(ctx context.Context) error {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		var ok bool
		_ = e.pool.QueryRow(ctx, `SELECT coalesce(bool_or(active), false) FROM pg_replication_slots WHERE slot_name = $1`, e.slot).Scan(&ok)
		if ok {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("slot %s not active within a minute", e.slot)
}

// dead: a backlog drained to an endpoint where nothing listens: every
// delivery goes to the retry store. Reports walhook's peak RSS; done when
// the slot's confirmed position passes the end of the backlog.
func (b *bench) dead(ctx context.Context) (result, error) {
	e, err := b.setup(ctx, nil)
	if err != nil {
		return result{}, err
	}
	defer e.stop(ctx)
	addr, err := freeAddr()
	if err != nil {
		return result{}, err
	}
	e.secrets = map[string]string{"bench": newSecret()}
	if err := e.config("http://"+addr+"/hook/bench", ""); err != nil {
		return result{}, err
	}
	rows := b.o.deadRows
	if err := e.backlog(ctx, rows, 100); err != nil {
		return result{}, err
	}
	var end string
	if err := e.pool.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&end); err != nil {
		return result{}, err
	}
	if err := e.startWalhook(); err != nil {
		return result{}, err
	}
	m := e.startMeter()
	for {
		var done bool
		err := e.pool.QueryRow(ctx, `SELECT coalesce(bool_and(confirmed_flush_lsn >= $2::pg_lsn), false) FROM pg_replication_slots WHERE slot_name = $1`, e.slot, end).Scan(&done)
		if err != nil {
			return result{}, err
		}
		if done {
			break
		}
		if exited(e) {
			return result{}, fmt.Errorf("walhook exited; see its log")
		}
		time.Sleep(500 * time.Millisecond)
	}
	res := m.finish(rows)
	var stored int
	_ = e.pool.QueryRow(ctx, `SELECT count(*) FROM walhook.deliveries`).Scan(&stored)
	res.extra = fmt.Sprintf("endpoint refuses connections; %d deliveries in the retry store", stored)
	return res, nil
}

// exited reports whether walhook's process has ended.
func exited(e *runEnv) bool {
	return e.walhook.ProcessState != nil || e.walhook.Process.Signal(syscallZero) != nil
}

// syscallZero is signal 0: it checks that a process exists.
var syscallZero = syscall.Signal(0)
