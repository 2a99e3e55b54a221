package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/walhook/walhook/internal/store"
)

// BenchmarkObserver measures the dispatcher's per-delivery metrics cost:
// one event, one first attempt that succeeds.
func BenchmarkObserver(b *testing.B) {
	m := New(prometheus.NewRegistry())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.EventEmitted("contact.created")
			m.Attempted(store.Attempt{EndpointID: "cfg:crm", StatusCode: 200, Duration: 12 * time.Millisecond, Number: 1}, "")
		}
	})
}
