package cdc_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/testkit"
	"github.com/walhook/walhook/testenv"
)

// pieceSink records pieces; it blocks in Apply while gate is closed and
// tells on arrived when a piece came.
type pieceSink struct {
	mu      sync.Mutex
	pieces  []cdc.Transaction
	gate    chan struct{} // Apply waits for it to be closed once blocked is set
	blocked bool
	arrived chan struct{}
}

func newPieceSink() *pieceSink {
	return &pieceSink{gate: make(chan struct{}), arrived: make(chan struct{}, 1)}
}

func (s *pieceSink) Apply(ctx context.Context, tx cdc.Transaction) error {
	s.mu.Lock()
	s.pieces = append(s.pieces, tx)
	blocked := s.blocked
	s.mu.Unlock()
	select {
	case s.arrived <- struct{}{}:
	default:
	}
	if blocked {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (s *pieceSink) snapshot() []cdc.Transaction {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]cdc.Transaction(nil), s.pieces...)
}

// waitFinal waits for the piece that ends the transaction committed at or
// after since, and returns every piece so far.
func (s *pieceSink) waitFinal(t *testing.T, since cdc.LSN) []cdc.Transaction {
	t.Helper()
	var pieces []cdc.Transaction
	testkit.AwaitCond(t, testkit.Timeout, "the last piece of the big transaction", s.arrived, func() bool {
		pieces = s.snapshot()
		return len(pieces) > 0 && !pieces[len(pieces)-1].More && pieces[len(pieces)-1].CommitLSN >= since
	})
	return pieces
}

// runPieces runs a reader on cfg with sink until the test ends.
func runPieces(t *testing.T, cfg cdc.ReaderConfig, sink cdc.Sink) (*cdc.Reader, cdc.ReaderTestSignals, *testkit.Buffer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := cdc.Prepare(ctx, "", cfg); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	logs := &testkit.Buffer{}
	cfg.Logger = zerolog.New(logs).Level(zerolog.InfoLevel)
	r := cdc.NewReader(cfg)
	signals := r.InitTestSignals()
	rctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx, sink) }()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v", err)
			}
		case <-time.After(waitTimeout):
			t.Error("Run did not return after cancel")
		}
		if t.Failed() {
			t.Logf("reader logs:\n%s", logs.String())
		}
	})
	return r, signals, logs
}

// checkPieces checks that pieces, from the transaction committed at
// commit, carry the positions 0..n-1 once each and in order, that only the
// last piece has an end LSN, and returns it.
func checkPieces(t *testing.T, pieces []cdc.Transaction, commit cdc.LSN, n int) cdc.LSN {
	t.Helper()
	next, count, end := 0, 0, cdc.LSN(0)
	for i, p := range pieces {
		if p.CommitLSN != commit {
			continue
		}
		count++
		if end != 0 {
			t.Fatalf("piece %d (part %d) after the last piece", i, p.Part)
		}
		if p.More != (p.EndLSN == 0) {
			t.Errorf("part %d: more %t with end LSN %s; only the last piece has one", p.Part, p.More, p.EndLSN)
		}
		if !p.More {
			end = p.EndLSN
		}
		for _, c := range p.Changes {
			if c.Position != next {
				t.Fatalf("part %d: position %d, want %d (every position once, in order)", p.Part, c.Position, next)
			}
			if c.CommitLSN != commit || c.EndLSN != p.EndLSN || c.XID != p.XID || c.CommitTime.IsZero() {
				t.Fatalf("part %d position %d: commit %s end %s xid %d; want the piece's", p.Part, c.Position, c.CommitLSN, c.EndLSN, c.XID)
			}
			if got := c.New["n"].(int64); got != int64(next+1) {
				t.Fatalf("position %d holds row %d", next, got)
			}
			next++
		}
	}
	if next != n || end == 0 {
		t.Fatalf("got %d changes in %d pieces, last piece end %s; want %d changes ending in one last piece", next, count, end, n)
	}
	if count < 2 {
		t.Fatalf("a transaction of %d changes came in %d piece", n, count)
	}
	return end
}

// TestBigTransactionInPieces: a 50,000-row transaction is handed over in
// pieces as it arrives, with positions counted across the transaction, and
// the slot is confirmed past it only once its end LSN is acknowledged.
func TestBigTransactionInPieces(t *testing.T) {
	t.Parallel()
	const n = 50000
	db := testenv.NewDB(t)
	db.Exec(t, `CREATE TABLE big (n bigint PRIMARY KEY, pad text)`)
	cfg := testConfig(t, db, "public.big")
	sink := newPieceSink()
	reader, signals, _ := runPieces(t, cfg, sink)
	testkit.Await(t, "streaming", signals.Streaming)

	db.Exec(t, `INSERT INTO big SELECT g, 'x' FROM generate_series(1, $1::int) g`, n)
	pieces := sink.waitFinal(t, 0)
	commit := pieces[0].CommitLSN
	end := checkPieces(t, pieces, commit, n)
	if len(pieces) < n/1000 {
		t.Errorf("%d pieces for %d changes, want at least one per 1,000", len(pieces), n)
	}

	// Every piece is handed over but the transaction is not acknowledged:
	// the slot must stay before it, even once the server reported a WAL
	// end past it (which an idle reader would confirm).
	testkit.Eventually(t, "the server's WAL end past the transaction", func() bool {
		return reader.Status().ServerWALEnd > end
	})
	if got := confirmedFlush(t, db, cfg.Slot); got >= end || reader.Status().Acked >= end {
		t.Fatalf("confirmed %s (reader acked %s) past the unacknowledged transaction ending at %s", got, reader.Status().Acked, end)
	}
	reader.Ack(end)
	waitConfirmed(t, db, cfg.Slot, end)
}

// TestReconnectInsideBigTransaction: the walsender is terminated while a
// big transaction is only partly received; the server sends it again from
// its start, and the sink gets every position exactly once, in order, the
// rest of the transaction after what it already had.
func TestReconnectInsideBigTransaction(t *testing.T) {
	t.Parallel()
	const n = 20000
	db := testenv.NewDB(t)
	db.Exec(t, `CREATE TABLE big (n bigint PRIMARY KEY, pad text)`)
	cfg := testConfig(t, db, "public.big")
	// Small pieces of wide rows: the reader's queue (64 pieces) and the
	// socket hold a fraction of the transaction, so the reader is still
	// receiving it when the walsender goes.
	cdc.SetPieceChanges(&cfg, 50)
	sink := newPieceSink()
	sink.blocked = true
	_, signals, logs := runPieces(t, cfg, sink)
	testkit.Await(t, "streaming", signals.Streaming)

	db.Exec(t, `INSERT INTO big SELECT g, repeat('x', 1000) FROM generate_series(1, $1::int) g`, n)
	testkit.AwaitCond(t, testkit.Timeout, "the first piece", sink.arrived, func() bool { return len(sink.snapshot()) > 0 })
	// The sink holds the first piece; the reader fills its queue and stops
	// reading. Terminate its walsender, then let the sink go.
	testkit.Eventually(t, "the walsender", func() bool { return walsenderPID(t, db, cfg.Slot) != 0 })
	db.Exec(t, `SELECT pg_terminate_backend($1)`, walsenderPID(t, db, cfg.Slot))
	testkit.Await(t, "the interrupted session", signals.Interrupted)
	sink.mu.Lock()
	sink.blocked = false
	sink.mu.Unlock()
	close(sink.gate)
	testkit.Await(t, "a new session", signals.Streaming)

	pieces := sink.waitFinal(t, 0)
	checkPieces(t, pieces, pieces[0].CommitLSN, n)
	if !strings.Contains(logs.String(), "sent again") {
		t.Errorf("the reader never saw the interrupted transaction sent again (the socket held all of it?); logs:\n%s", logs.String())
	}
}
