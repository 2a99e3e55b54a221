package backfill

import (
	"fmt"
	"strconv"
	"strings"
)

// snapshot is what a chunk's read could see, from pg_current_snapshot():
// transactions from xmax on, and those listed in xip, were still running.
// Transaction ids are compared by their low 32 bits, as pgoutput sends them.
type snapshot struct {
	set  bool
	xmax uint32
	xip  map[uint32]struct{}
}

// parseSnapshot reads pg_snapshot's text form "xmin:xmax:xip,xip,...".
func parseSnapshot(s string) (snapshot, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return snapshot{}, fmt.Errorf("snapshot %q is not xmin:xmax:xip", s)
	}
	xmax, err := strconv.ParseUint(parts[1], 10, 64)
	if err != nil {
		return snapshot{}, fmt.Errorf("snapshot %q: %w", s, err)
	}
	snap := snapshot{set: true, xmax: uint32(xmax), xip: map[uint32]struct{}{}}
	if parts[2] != "" {
		for _, x := range strings.Split(parts[2], ",") {
			xid, err := strconv.ParseUint(x, 10, 64)
			if err != nil {
				return snapshot{}, fmt.Errorf("snapshot %q: %w", s, err)
			}
			snap.xip[uint32(xid)] = struct{}{}
		}
	}
	return snap, nil
}

// visible reports whether a committed transaction's changes were visible
// to the snapshot. Without a snapshot (an empty chunk) it says true:
// there are no rows to protect.
func (s snapshot) visible(xid uint32) bool {
	if !s.set {
		return true
	}
	if int32(xid-s.xmax) >= 0 {
		return false
	}
	_, running := s.xip[xid]
	return !running
}
