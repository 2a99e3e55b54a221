package cdc

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestShutdownWatch feeds keepalive sequences to shutdownWatch: only a
// ping-pong of reply requests lasting shutdownGrace, while the server is
// past what may be confirmed, means a server waiting to shut down.
func TestShutdownWatch(t *testing.T) {
	t0 := time.Unix(1000, 0)
	type ka struct {
		at     time.Duration // since t0
		reply  bool
		walEnd LSN
		acked  LSN
	}
	// pingPong returns reply requests every gap from 0 to until, at walEnd
	// 200 with acked 100.
	pingPong := func(gap, until time.Duration) []ka {
		var out []ka
		for at := time.Duration(0); at <= until; at += gap {
			out = append(out, ka{at, true, 200, 100})
		}
		return out
	}
	tests := []struct {
		name string
		kas  []ka
		want bool // the last keepalive lets go
	}{
		{"ping-pong for the grace", pingPong(time.Millisecond, shutdownGrace), true},
		{"ping-pong shorter than the grace", pingPong(time.Millisecond, shutdownGrace-2*time.Millisecond), false},
		{"ping-pong at a slow link's pace", pingPong(300*time.Millisecond, shutdownGrace+300*time.Millisecond), true},
		{"reply requests of normal streaming (wal_sender_timeout/2 apart)", pingPong(30*time.Second, 5*time.Minute), false},
		{"reply requests of a 2s wal_sender_timeout", pingPong(pingPongGap+time.Millisecond, time.Minute), false},
		{"too few pings", []ka{{0, true, 200, 100}, {shutdownGrace + time.Second/2, true, 200, 100}}, false},
		{"keepalives without reply requests", []ka{{0, false, 200, 100}, {time.Second / 2, false, 200, 100}, {time.Second, false, 200, 100}, {shutdownGrace, false, 200, 100}}, false},
		{"confirmed everything in between", append(pingPong(time.Millisecond, shutdownGrace/2),
			ka{shutdownGrace/2 + time.Millisecond, true, 200, 200},
			ka{shutdownGrace/2 + 2*time.Millisecond, true, 300, 200},
			ka{shutdownGrace + time.Millisecond, true, 300, 200}), false},
		{"a pause in the ping-pong restarts it", append(pingPong(time.Millisecond, shutdownGrace/2),
			ka{shutdownGrace/2 + 2*pingPongGap, true, 200, 100},
			ka{shutdownGrace/2 + 2*pingPongGap + time.Millisecond, true, 200, 100},
			ka{shutdownGrace + 2*pingPongGap, true, 200, 100}), false},
		{"plain keepalives do not break the ping-pong", append(pingPong(time.Millisecond, shutdownGrace/2),
			ka{shutdownGrace/2 + time.Millisecond, false, 200, 100},
			ka{shutdownGrace, true, 200, 100}), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w shutdownWatch
			for i, k := range tt.kas {
				got := w.keepalive(t0.Add(k.at), k.reply, k.walEnd, k.acked)
				if i < len(tt.kas)-1 && got && !tt.want {
					t.Fatalf("let go at keepalive %d of %d (at %s)", i+1, len(tt.kas), k.at)
				}
				if i == len(tt.kas)-1 && got != tt.want {
					t.Fatalf("last keepalive (at %s): let go = %v, want %v", k.at, got, tt.want)
				}
			}
		})
	}
}

// TestRefusedAsShuttingDown: only SQLSTATE 57P03 on a new connection
// means the server is going away; a terminated session (57P01) may be an
// operator's pg_terminate_backend.
func TestRefusedAsShuttingDown(t *testing.T) {
	for code, want := range map[string]bool{"57P03": true, "57P01": false, "53300": false} {
		err := &pgconn.PgError{Severity: "FATAL", Code: code, Message: "x"}
		if got := RefusedAsShuttingDown(err); got != want {
			t.Errorf("%s: %v, want %v", code, got, want)
		}
	}
	if RefusedAsShuttingDown(nil) {
		t.Error("nil error taken for a refusal")
	}
}
