package event

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/walhook/walhook/cdc"
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

// TestIDsMatchTheHashRecipeOnRandomInputs compares NewID and NewReadID
// with the recipe written out with the hash and encoding packages, on
// random inputs of every length the fast paths and their fallbacks take.
func TestIDsMatchTheHashRecipeOnRandomInputs(t *testing.T) {
	crockford := base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)
	rng := rand.New(rand.NewPCG(3, 4))
	text := func() string {
		b := make([]byte, rng.IntN(300))
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return string(b)
	}
	for range 20000 {
		lsn, pos, rule := cdc.LSN(rng.Uint64()), int(rng.Uint64()), text()
		h := sha256.New()
		_ = binary.Write(h, binary.BigEndian, uint64(lsn))
		_ = binary.Write(h, binary.BigEndian, uint64(pos))
		h.Write([]byte(rule))
		want := "evt_" + crockford.EncodeToString(h.Sum(nil)[:16])
		if got := NewID(lsn, pos, rule); got != want {
			t.Fatalf("NewID(%d, %d, %q) = %s, want %s", lsn, pos, rule, got, want)
		}

		seed, key := text(), text()
		h.Reset()
		for _, part := range []string{"read", seed, key, rule} {
			h.Write([]byte(part))
			h.Write([]byte{0})
		}
		want = "evt_" + crockford.EncodeToString(h.Sum(nil)[:16])
		if got := NewReadID(seed, []byte(key), rule); got != want {
			t.Fatalf("NewReadID(%q, %q, %q) = %s, want %s", seed, key, rule, got, want)
		}
	}
}

// BenchmarkNewID measures the id of each event, computed for every change
// a rule matches:
//
//	go test -run '^$' -bench NewID ./internal/event/
func BenchmarkNewID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = NewID(0x16B3748, 3, "deal.stage.changed")
	}
}
