package config

import (
	"fmt"
	"strconv"
	"strings"
)

// batch reads an endpoint's batch block; fields left out take their
// defaults.
func (d *decoder) batch(b *batchBlock) *Batch {
	out := &Batch{MaxEvents: DefaultBatchMaxEvents, MaxBytes: DefaultBatchMaxBytes, MaxWait: DefaultBatchMaxWait}
	if b.MaxEvents != nil {
		if n := *b.MaxEvents; n < 1 || n > MaxBatchEvents {
			d.errorf(b.MaxEventsRange, "Invalid max_events", "max_events is between 1 and %d, not %d.", MaxBatchEvents, n)
		} else {
			out.MaxEvents = n
		}
	}
	if present(b.MaxBytesRange) && !d.failed(b.MaxBytesRange) {
		n, err := ParseSize(b.MaxBytes)
		switch {
		case err != nil:
			d.errorf(b.MaxBytesRange, "Invalid max_bytes", "%s", sentence(err))
		case n < MinBatchBytes || n > MaxBatchBytes:
			d.errorf(b.MaxBytesRange, "Invalid max_bytes", "max_bytes is between 1KB and 64MB, not %q.", b.MaxBytes)
		default:
			out.MaxBytes = n
		}
	}
	if present(b.MaxWaitRange) && !d.failed(b.MaxWaitRange) {
		v, err := ParseDuration(b.MaxWait)
		switch {
		case err != nil:
			d.errorf(b.MaxWaitRange, "Invalid max_wait", "%s", sentence(err))
		case v < 0 || v > MaxBatchWait:
			d.errorf(b.MaxWaitRange, "Invalid max_wait", "max_wait is between \"0s\" (send what is queued at once) and %q, not %q.", MaxBatchWait.String(), b.MaxWait)
		default:
			out.MaxWait = v
		}
	}
	return out
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
		return 0, fmt.Errorf("invalid size %q: use a whole number and a unit (B, KB, MB), like \"512KB\" or \"1MB\"", s)
	}
	return int(n * factor), nil
}
