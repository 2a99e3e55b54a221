package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkObserver measures the dispatcher's per-delivery metrics cost:
// one event, one first attempt that succeeds.
func BenchmarkObserver(b *testing.B) {
	m := New(prometheus.NewRegistry())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.EventEmitted("contact.created")
			m.Attempted("cfg:crm", true, 200, 12*time.Millisecond, 1)
		}
	})
}
