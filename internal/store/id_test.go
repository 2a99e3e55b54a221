package store

import (
	"crypto/sha256"
	"encoding/base32"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestIDEncodingMatchesItsRecipe: ids are the prefix and the lowercase
// base32 (RFC 4648, no padding) of 16 bytes, as they were first written:
// strings.ToLower of the standard encoding; checked on random inputs.
func TestIDEncodingMatchesItsRecipe(t *testing.T) {
	t.Parallel()
	std := base32.StdEncoding.WithPadding(base32.NoPadding)
	rng := rand.New(rand.NewPCG(1, 2))
	text := func() string {
		b := make([]byte, rng.IntN(200))
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return string(b)
	}
	for range 20000 {
		ev, ep := text(), text()
		sum := sha256.Sum256([]byte(ev + "|" + ep))
		want := "dlv_" + strings.ToLower(std.EncodeToString(sum[:16]))
		if got := DeliveryID(ev, ep); got != want {
			t.Fatalf("DeliveryID(%q, %q) = %s, want %s", ev, ep, got, want)
		}
		var b [16]byte
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		want = "ep_" + strings.ToLower(std.EncodeToString(b[:]))
		if got := idText("ep_", b[:]); got != want {
			t.Fatalf("idText(%x) = %s, want %s", b, got, want)
		}
	}
	ids := []string{DeliveryID("evt_1", "cfg:a"), DeliveryID("evt_2", "cfg:a")}
	h := sha256.New()
	for _, id := range ids {
		h.Write([]byte(id + "\n"))
	}
	if got, want := BatchID(ids), "bat_"+strings.ToLower(std.EncodeToString(h.Sum(nil)[:16])); got != want {
		t.Fatalf("BatchID = %s, want %s", got, want)
	}
}

// BenchmarkDeliveryID measures the id of each delivery, computed for
// every event and endpoint:
//
//	go test -run '^$' -bench DeliveryID ./internal/store/
func BenchmarkDeliveryID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = DeliveryID("evt_0s3fn5m2v6kq8e1c9a7b4d2x0y", "cfg:orders")
	}
}
