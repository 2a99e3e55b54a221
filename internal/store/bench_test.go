package store

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchDeliveries makes n deliveries with ~300-byte bodies, over 8
// endpoints, a third of them keyed.
func benchDeliveries(prefix string, n int) []Delivery {
	body := strings.Repeat("x", 300)
	ds := make([]Delivery, n)
	for i := range ds {
		d := delivery(i, fmt.Sprintf("cfg:ep%d", i%8), "")
		d.EventID = fmt.Sprintf("%s_%d", prefix, i)
		d.ID = DeliveryID(d.EventID, d.EndpointID)
		if i%3 == 0 {
			d.Key = fmt.Sprintf("deal-%d", i%1000)
		}
		d.Body = []byte(body)
		d.Attempts, d.LastStatus, d.LastError = 1, 503, "503 Service Unavailable"
		ds[i] = d
	}
	return ds
}

// BenchmarkPersist measures persisting batches of 500 deliveries (the
// dispatcher's failure path), from one goroutine and from four.
func BenchmarkPersist(b *testing.B) {
	for _, workers := range []int{1, 4} {
		b.Run(fmt.Sprintf("batch500/workers%d", workers), func(b *testing.B) {
			s, _ := setup(b)
			const batch = 500
			var seq atomic.Int64
			var wg sync.WaitGroup
			var iters atomic.Int64
			b.ResetTimer()
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for iters.Add(1) <= int64(b.N) {
						ds := benchDeliveries(fmt.Sprintf("p%d", seq.Add(1)), batch)
						if err := s.Persist(ctx(b), ds); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkClaimComplete measures retry workers draining due deliveries:
// ClaimDue of 50 and one Complete (delivered) per delivery, four workers.
func BenchmarkClaimComplete(b *testing.B) {
	s, _ := setup(b)
	ds := benchDeliveries("c", b.N)
	for i := 0; i < len(ds); i += 1000 {
		if err := s.Persist(ctx(b), ds[i:min(i+1000, len(ds))]); err != nil {
			b.Fatal(err)
		}
	}
	var done atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for done.Load() < int64(b.N) {
				got, err := s.ClaimDue(ctx(b), 50, time.Minute, nil)
				if err != nil {
					b.Error(err)
					return
				}
				for _, d := range got {
					if _, err := s.Complete(ctx(b), d, Attempt{StatusCode: 200, Duration: time.Millisecond}, Outcome{Status: StatusDelivered}); err != nil {
						b.Error(err)
						return
					}
				}
				done.Add(int64(len(got)))
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
}

// BenchmarkClaimDueBlockedKeys measures ClaimDue of 100 claimable rows
// while 10,000 deliveries wait behind the leased heads of 10 keys (a dead
// endpoint with ordering = "key"); the first call, which parks them, is logged.
func BenchmarkClaimDueBlockedKeys(b *testing.B) {
	s, _ := setup(b)
	ds := make([]Delivery, 0, 10000)
	for i := range 10000 {
		d := delivery(i, "cfg:dead", fmt.Sprintf("k%d", i%10))
		d.NextAttemptAt = time.Now().Add(-time.Hour)
		ds = append(ds, d)
	}
	if err := s.Persist(ctx(b), ds); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if got, err := s.ClaimDue(ctx(b), 10, time.Hour, nil); err != nil || len(got) != 10 {
		b.Fatalf("leasing the heads: %d, %v", len(got), err)
	}
	b.Logf("first ClaimDue (claims the 10 heads): %v", time.Since(start))
	round := 0
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		round++
		free := make([]Delivery, 100)
		for i := range free {
			free[i] = delivery(100000+i, "cfg:live", "")
			free[i].EventID = fmt.Sprintf("free_%d_%d", round, i)
			free[i].ID = ""
		}
		if err := s.Persist(ctx(b), free); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		got, err := s.ClaimDue(ctx(b), 100, time.Hour, nil)
		if err != nil || len(got) != 100 {
			b.Fatalf("claimed %d, %v", len(got), err)
		}
	}
}
