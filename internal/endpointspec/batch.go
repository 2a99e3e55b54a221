package endpointspec

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Bounds of an endpoint's batch (docs/config.md, "batch"), for the config
// file's batch block and an API webhook's batch object alike.
const (
	MaxBatchEvents = 1000
	MinBatchBytes  = 1 << 10
	MaxBatchBytes  = 64 << 20
	MaxBatchWait   = 10 * time.Second
)

// CheckBatchEvents checks a batch's max_events: 1 to MaxBatchEvents.
func CheckBatchEvents(n int) error {
	if n < 1 || n > MaxBatchEvents {
		return fmt.Errorf("max_events is between 1 and %d, not %d", MaxBatchEvents, n)
	}
	return nil
}

// CheckBatchBytes reads a batch's max_bytes ("512KB", "1MB"): 1KB to 64MB.
func CheckBatchBytes(s string) (int, error) {
	n, err := ParseSize(s)
	if err != nil {
		return 0, fmt.Errorf("max_bytes %w", err)
	}
	if n < MinBatchBytes || n > MaxBatchBytes {
		return 0, fmt.Errorf("max_bytes is between 1KB and 64MB, not %q", s)
	}
	return n, nil
}

// CheckBatchWait reads a batch's max_wait (a Go duration, "50ms"): 0 (send
// what is queued at once) to MaxBatchWait.
func CheckBatchWait(s string) (time.Duration, error) {
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("max_wait %q is not a duration: use a number and a unit, like \"50ms\" or \"1s\"", s)
	}
	if v < 0 || v > MaxBatchWait {
		return 0, fmt.Errorf("max_wait is between \"0s\" (send what is queued at once) and %q, not %q", MaxBatchWait.String(), s)
	}
	return v, nil
}

// sizeUnits are the units ParseSize accepts, in powers of 1024.
var sizeUnits = []struct {
	suffix string
	factor int64
}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"B", 1}}

// ParseSize parses a byte size: a whole number with B, KB or MB (KiB and
// MiB too; K and M are 1024 and 1024²), like "512KB" or "1MB"; a bare
// number is bytes.
func ParseSize(s string) (int, error) {
	text := strings.TrimSpace(s)
	factor := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(text, u.suffix) {
			text, factor = strings.TrimSpace(strings.TrimSuffix(text, u.suffix)), u.factor
			break
		}
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil || n < 0 || n > (1<<40)/factor {
		return 0, fmt.Errorf("%q is not a size: use a whole number and a unit (B, KB, MB), like \"512KB\" or \"1MB\"", s)
	}
	return int(n * factor), nil
}
