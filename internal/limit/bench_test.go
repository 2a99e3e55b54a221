package limit_test

import (
	"context"
	"testing"
	"time"

	"github.com/walhook/walhook/internal/limit"
	"github.com/walhook/walhook/internal/sender"
)

// BenchmarkGateAcquireDone measures the gate's cost per successful attempt
// (Acquire, then Done with a 204), the path every delivery takes:
//
//	go test -run '^$' -bench GateAcquireDone ./internal/limit/
func BenchmarkGateAcquireDone(b *testing.B) {
	g := limit.NewGate(limit.GateOptions{Ceiling: 64})
	ctx := context.Background()
	res := sender.Result{StatusCode: 204, Duration: time.Millisecond}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p, err := g.Acquire(ctx)
			if err != nil {
				b.Error(err)
				return
			}
			p.Done(res)
		}
	})
}
