package event

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"testing"
)

// TestIDsFollowTheDocumentedRecipe: event ids are what docs/operations.md
// ("Event ids") says, computed here from that text alone, so a receiver
// can reproduce them.
func TestIDsFollowTheDocumentedRecipe(t *testing.T) {
	crockford := base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)
	id := func(sum [32]byte) string { return "evt_" + crockford.EncodeToString(sum[:16]) }

	seed, key, rule := "bfs_0123456789abcdef01234567", `[42,"a"]`, "contact.synced"
	want := id(sha256.Sum256([]byte("read\x00" + seed + "\x00" + key + "\x00" + rule + "\x00")))
	if got := NewReadID(seed, []byte(key), rule); got != want {
		t.Errorf("NewReadID = %s, the documented recipe gives %s", got, want)
	}
	if len(want) != 4+26 {
		t.Errorf("id %s is not evt_ and 26 characters", want)
	}

	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], 0x16B3748)
	binary.BigEndian.PutUint64(b[8:], 3)
	want = id(sha256.Sum256(append(b[:], "deal.stage.changed"...)))
	if got := NewID(0x16B3748, 3, "deal.stage.changed"); got != want {
		t.Errorf("NewID = %s, the documented recipe gives %s", got, want)
	}
}
