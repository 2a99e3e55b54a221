package outboxevents

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/walhook/walhook/cdc/outbox"
)

// TestEventIDMatchesItsRecipe compares EventID with its documented recipe
// written out with the hash and encoding packages, on random inputs.
func TestEventIDMatchesItsRecipe(t *testing.T) {
	t.Parallel()
	crockford := base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)
	rng := rand.New(rand.NewPCG(5, 6))
	for range 20000 {
		o := outbox.Origin{System: rng.Uint64(), Database: rng.Uint32(), Table: rng.Uint32()}
		rowID, created := int64(rng.Uint64()), time.UnixMicro(rng.Int64N(1<<50))
		rule := make([]byte, rng.IntN(200))
		for i := range rule {
			rule[i] = byte(rng.UintN(256))
		}
		h := sha256.New()
		h.Write([]byte("walhook outbox v2\x00"))
		for _, v := range []any{o.System, o.Database, o.Table, uint64(rowID), uint64(created.UnixMicro())} {
			_ = binary.Write(h, binary.BigEndian, v)
		}
		h.Write(rule)
		want := "evt_" + crockford.EncodeToString(h.Sum(nil)[:16])
		if got := EventID(o, rowID, created, string(rule)); got != want {
			t.Fatalf("EventID(%+v, %d, %s, %q) = %s, want %s", o, rowID, created, rule, got, want)
		}
	}
}

// BenchmarkEventID measures the id of each outbox row's event:
//
//	go test -run '^$' -bench EventID ./internal/outboxevents/
func BenchmarkEventID(b *testing.B) {
	o := outbox.Origin{System: 7301234567890123456, Database: 16384, Table: 16390}
	created := time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		_ = EventID(o, 42, created, "contact.created")
	}
}
