package backfill

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// TestDefaultIDSeedFollowsTheDocs: the default id seed is what
// docs/operations.md ("Event ids") says, and a where clause's surrounding
// spaces do not change it.
func TestDefaultIDSeedFollowsTheDocs(t *testing.T) {
	sum := sha256.Sum256([]byte("public.contacts\x00id > 5\x00contact.synced\x00cfg:crm"))
	want := "bfs_" + hex.EncodeToString(sum[:12])
	if got := DefaultIDSeed("public.contacts", "  id > 5 ", "contact.synced", "cfg:crm"); got != want {
		t.Errorf("DefaultIDSeed = %s, the documented recipe gives %s", got, want)
	}
}
