package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/walhook/walhook/internal/config"
)

// The concurrency limit of each endpoint lives in the running process;
// `walhook status` reads it from the admin listener's /metrics (which needs
// no token) when walhook runs with an admin block, and leaves it out when
// walhook is down.

const limitMetric = "walhook_endpoint_concurrency_limit"

// liveLimits returns each endpoint's current concurrency limit as the
// running walhook reports it, or nil when it cannot be read.
func liveLimits(ctx context.Context, cfg *config.Config) map[string]int {
	if cfg.Admin == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+dialable(cfg.Admin.Listen)+"/metrics", nil)
	if err != nil {
		return nil
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	return parseLimits(io.LimitReader(resp.Body, 16<<20))
}

// parseLimits reads the limit gauge's samples from Prometheus text.
func parseLimits(r io.Reader) map[string]int {
	out := map[string]int{}
	sc := bufio.NewScanner(r)
	prefix := limitMetric + `{endpoint="`
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), prefix)
		if !ok {
			continue
		}
		id, value, ok := strings.Cut(rest, `"} `)
		if !ok {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil {
			out[id] = int(v)
		}
	}
	return out
}

// limitText is an endpoint's LIMIT column: the live concurrency limit
// (or "-" when walhook is not reachable) and its rate limit, if any.
func limitText(e endpointStatus) string {
	s := "-"
	if e.ConcurrencyLimit != nil {
		s = strconv.Itoa(*e.ConcurrencyLimit)
	}
	if e.RateLimit != "" {
		s = fmt.Sprintf("%s, %s", s, e.RateLimit)
	}
	return s
}
