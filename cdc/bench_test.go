package cdc_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/testenv"
)

// benchChanges is the backlog each benchmark reads back.
const benchChanges = 200_000

// BenchmarkDecode measures decoded changes per second read through a
// Reader from a backlog of single-row changes already in the WAL:
//
//	go test -run '^$' -bench BenchmarkDecode -benchtime=1x ./cdc/
func BenchmarkDecode(b *testing.B) {
	for _, perTx := range []int{1, 100} {
		b.Run(fmt.Sprintf("rows_per_tx=%d", perTx), func(b *testing.B) { benchmarkDecode(b, perTx) })
	}
}

type countingSink struct {
	reader  *cdc.Reader
	changes atomic.Int64
	done    chan struct{}
	want    int64
}

func (s *countingSink) Apply(_ context.Context, tx cdc.Transaction) error {
	s.reader.Ack(tx.EndLSN)
	if s.changes.Add(int64(len(tx.Changes))) >= s.want {
		select {
		case s.done <- struct{}{}:
		default:
		}
	}
	return nil
}

func benchmarkDecode(b *testing.B, perTx int) {
	db := testenv.NewEmptyDB(b)
	if _, err := db.Pool.Exec(context.Background(), `CREATE TABLE events (
		id bigserial PRIMARY KEY, organization_id bigint NOT NULL, name text NOT NULL, email text,
		amount numeric(12,2), active bool, created_at timestamptz NOT NULL DEFAULT now(), metadata jsonb)`); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cfgs := make([]cdc.ReaderConfig, b.N)
	for i := range cfgs {
		cfgs[i] = cdc.ReaderConfig{
			URL:               db.URL,
			Slot:              testenv.Name(b, fmt.Sprintf("slot%d", i)),
			Publication:       testenv.Name(b, "pub"),
			Tables:            []string{"public.events"},
			HeartbeatInterval: -1,
			Logger:            zerolog.Nop(),
		}
		if i > 0 {
			cfgs[i].Publication = cfgs[0].Publication
		}
		if err := cdc.Prepare(ctx, "", cfgs[i]); err != nil {
			b.Fatal(err)
		}
	}
	_, err := db.Pool.Exec(ctx, fmt.Sprintf(`DO $$ BEGIN
		FOR t IN 1..%d LOOP
			INSERT INTO events (organization_id, name, email, amount, active, metadata)
			SELECT i %% 100, 'name ' || i, 'user' || i || '@example.com', i * 1.25, i %% 2 = 0,
				jsonb_build_object('source', 'bench', 'n', i)
			FROM generate_series(1, %d) i;
			COMMIT;
		END LOOP; END $$`, benchChanges/perTx, perTx))
	if err != nil {
		b.Fatal(err)
	}

	b.ResetTimer()
	var elapsed, cpu time.Duration
	for i := 0; i < b.N; i++ {
		sink := &countingSink{done: make(chan struct{}, 1), want: benchChanges}
		sink.reader = cdc.NewReader(cfgs[i])
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		began, cpuBefore := time.Now(), processCPU(b)
		go func() { done <- sink.reader.Run(runCtx, sink) }()
		select {
		case <-sink.done:
		case err := <-done:
			b.Fatalf("Run returned early: %v", err)
		case <-ctx.Done():
			b.Fatalf("timed out with %d changes", sink.changes.Load())
		}
		elapsed += time.Since(began)
		cpu += processCPU(b) - cpuBefore
		stop()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(benchChanges*b.N)/elapsed.Seconds(), "changes/s")
	// The reader's own CPU cost, which the walsender's speed and other
	// load on the machine do not hide.
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(benchChanges*b.N), "cpu-ns/change")
}

// processCPU returns the user and system CPU time this process used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
