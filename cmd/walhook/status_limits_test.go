package main

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/metrics"
)

func TestStatusReadsLiveLimitsFromMetrics(t *testing.T) {
	m := metrics.New(prometheus.NewRegistry())
	m.ConcurrencyLimit("cfg:crm", 24)
	m.ConcurrencyLimit("ep_x", 3)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	cfg := &config.Config{Admin: &config.Admin{Listen: strings.TrimPrefix(srv.URL, "http://")}}
	got := liveLimits(context.Background(), cfg)
	if len(got) != 2 || got["cfg:crm"] != 24 || got["ep_x"] != 3 {
		t.Fatalf("liveLimits = %v", got)
	}
	srv.Close()
	if got := liveLimits(context.Background(), cfg); got != nil {
		t.Fatalf("walhook down: liveLimits = %v, want nil", got)
	}
	if got := liveLimits(context.Background(), &config.Config{}); got != nil {
		t.Fatalf("no admin block: liveLimits = %v, want nil", got)
	}
	l := 24
	for e, want := range map[*endpointStatus]string{
		{ConcurrencyLimit: &l}:                     "24",
		{ConcurrencyLimit: &l, RateLimit: "500/s"}: "24, 500/s",
		{}:                    "-",
		{RateLimit: "3000/m"}: "-, 3000/m",
	} {
		if got := limitText(*e); got != want {
			t.Errorf("limitText(%+v) = %q, want %q", *e, got, want)
		}
	}
}
