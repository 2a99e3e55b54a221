package metrics

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/walhook/walhook/internal/store"
)

// WatchInstances makes the membership gauges read f at scrape time (cached
// for 2s): walhook_instances, walhook_instance_info,
// walhook_instance_heartbeat_age_seconds, walhook_instance_in_flight and
// walhook_instance_attempts_per_second. Every instance reports the whole
// list as the state schema has it.
func (m *Metrics) WatchInstances(f func(ctx context.Context) ([]store.Instance, error)) {
	m.instances.mu.Lock()
	defer m.instances.mu.Unlock()
	m.instances.list = f
	m.instances.readAt = time.Time{}
}

// instanceCollector computes the membership gauges when scraped; with no
// list watched, or none read yet, it sends nothing.
type instanceCollector struct {
	count, info, age, inFlight, rate, readErrors *prometheus.Desc

	mu     sync.Mutex // serialises scrapes and guards everything below
	list   func(ctx context.Context) ([]store.Instance, error)
	now    func() time.Time
	readAt time.Time
	ok     bool
	last   []store.Instance
	errors float64
}

func newInstanceCollector() *instanceCollector {
	id := []string{"instance"}
	return &instanceCollector{
		count: prometheus.NewDesc("walhook_instances", "Instances registered in the state schema, by state: alive (heartbeat recent) or dead (silent past the threshold, not yet pruned).", []string{"state"}, nil),
		info: prometheus.NewDesc("walhook_instance_info", "1 for each registered instance, with its host, pid, version, role (leader, standby, poller) and state.",
			[]string{"instance", "host", "pid", "version", "role", "state"}, nil),
		age:        prometheus.NewDesc("walhook_instance_heartbeat_age_seconds", "Seconds since the instance's last heartbeat, by the state database's clock.", id, nil),
		inFlight:   prometheus.NewDesc("walhook_instance_in_flight", "Attempts the instance had in flight at its last heartbeat.", id, nil),
		rate:       prometheus.NewDesc("walhook_instance_attempts_per_second", "Attempts per second the instance made over its last heartbeat interval.", id, nil),
		readErrors: prometheus.NewDesc("walhook_instances_read_errors_total", "Failed reads of the instances list while computing the membership gauges.", nil, nil),
		now:        time.Now,
	}
}

// Describe sends every gauge's description.
func (c *instanceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.count, c.info, c.age, c.inFlight, c.rate, c.readErrors} {
		ch <- d
	}
}

// Collect reads the list (through the cache) and sends the gauges.
func (c *instanceCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.list == nil {
		return
	}
	if now := c.now(); now.Sub(c.readAt) >= cacheFor {
		ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
		list, err := c.list(ctx)
		cancel()
		if err != nil {
			c.errors++
		} else {
			c.last, c.ok = list, true
		}
		c.readAt = now
	}
	ch <- prometheus.MustNewConstMetric(c.readErrors, prometheus.CounterValue, c.errors)
	if !c.ok {
		return
	}
	alive, dead := 0, 0
	for _, in := range c.last {
		state := "dead"
		if in.Alive {
			state = "alive"
			alive++
		} else {
			dead++
		}
		ch <- prometheus.MustNewConstMetric(c.info, prometheus.GaugeValue, 1, in.ID, in.Host, strconv.Itoa(in.PID), in.Version, in.Role, state)
		ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, in.Silent.Seconds(), in.ID)
		ch <- prometheus.MustNewConstMetric(c.inFlight, prometheus.GaugeValue, float64(in.Load.InFlight), in.ID)
		ch <- prometheus.MustNewConstMetric(c.rate, prometheus.GaugeValue, in.Load.AttemptsPerSecond, in.ID)
	}
	ch <- prometheus.MustNewConstMetric(c.count, prometheus.GaugeValue, float64(alive), "alive")
	ch <- prometheus.MustNewConstMetric(c.count, prometheus.GaugeValue, float64(dead), "dead")
}
