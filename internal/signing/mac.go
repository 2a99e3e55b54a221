package signing

import (
	"crypto/hmac"
	"crypto/sha256"
	"hash"
	"sync"
)

// macKey is one signing key with a pool of HMAC-SHA256 states keyed with
// it. Signing takes a state, resets it (which restores the key's
// precomputed pads instead of hashing the key again) and puts it back, so
// a signature costs no allocation beyond its text.
type macKey struct {
	key  []byte
	pool sync.Pool // of *macState
}

type macState struct {
	h       hash.Hash
	scratch []byte // the "id.ts." or "ts." prefix being hashed
	sum     [sha256.Size]byte
}

func newMACKey(key []byte) *macKey {
	k := &macKey{key: key}
	k.pool.New = func() any { return &macState{h: hmac.New(sha256.New, k.key), scratch: make([]byte, 0, 128)} }
	return k
}

// sum appends to dst the HMAC of the parts joined by "." (an empty parts
// list hashes body alone) followed by body.
func (k *macKey) sum(dst []byte, body []byte, parts ...string) []byte {
	st := k.pool.Get().(*macState)
	st.h.Reset()
	st.scratch = st.scratch[:0]
	for _, p := range parts {
		st.scratch = append(st.scratch, p...)
		st.scratch = append(st.scratch, '.')
	}
	if len(st.scratch) > 0 {
		st.h.Write(st.scratch)
	}
	st.h.Write(body)
	dst = append(dst, st.h.Sum(st.sum[:0])...)
	k.pool.Put(st)
	return dst
}
