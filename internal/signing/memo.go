package signing

import (
	"crypto/sha256"
	"sync"
)

// Fan-out: when one event goes to many endpoints, those that share a
// secret (and so a key, through a Keyring) and a body need the same MAC
// within the same second. A Memo shared by the deliveries of one event
// remembers each MAC, so a secret signs the event once per second however
// many endpoints use it.
//
// Wiring: build every signer from one Keyring (so equal secrets share a
// key), give the deliveries of one event one *Memo, and pass it as
// Message.Memo on every attempt. Without a Memo every signature is
// computed afresh.

// Keyring interns signing keys: signers it builds share one key (and one
// pool of HMAC states) per distinct secret. It is safe for concurrent use.
type Keyring struct {
	mu   sync.Mutex
	keys map[string]*macKey // by secret text
}

// NewKeyring returns an empty Keyring.
func NewKeyring() *Keyring { return &Keyring{keys: map[string]*macKey{}} }

// New is signing.New with keys shared through the Keyring.
func (r *Keyring) New(scheme string, secrets []string, opts Options) (Signer, error) {
	s, err := New(scheme, secrets, opts)
	if err != nil {
		return nil, err
	}
	sg := s.(*signer)
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, text := range secrets {
		if k, ok := r.keys[text]; ok {
			sg.keys[i] = k
		} else {
			r.keys[text] = sg.keys[i]
		}
	}
	return sg, nil
}

// Retain forgets the keys of secrets not in use, so rotated-out secrets
// do not stay in memory.
func (r *Keyring) Retain(inUse map[string]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for text := range r.keys {
		if !inUse[text] {
			delete(r.keys, text)
		}
	}
}

// Memo remembers the MACs computed for one event's attempts. Its zero
// value is ready; it is safe for concurrent use.
type Memo struct {
	mu      sync.Mutex
	entries []memoEntry
}

type memoEntry struct {
	key    *macKey
	prefix string // the signed prefix parts joined by "."
	body   *byte  // identity of the body: the same encoded bytes
	n      int
	mac    [sha256.Size]byte
}

// sum is k.sum through the memo: an equal key, prefix and body (the same
// slice) reuse the MAC.
func (m *Memo) sum(dst []byte, k *macKey, body []byte, parts ...string) []byte {
	if m == nil || len(body) == 0 {
		return k.sum(dst, body, parts...)
	}
	prefix := joinParts(parts)
	m.mu.Lock()
	for i := range m.entries {
		e := &m.entries[i]
		if e.key == k && e.body == &body[0] && e.n == len(body) && e.prefix == prefix {
			mac := e.mac
			m.mu.Unlock()
			return append(dst, mac[:]...)
		}
	}
	m.mu.Unlock()
	e := memoEntry{key: k, prefix: prefix, body: &body[0], n: len(body)}
	k.sum(e.mac[:0], body, parts...)
	m.mu.Lock()
	m.entries = append(m.entries, e)
	m.mu.Unlock()
	return append(dst, e.mac[:]...)
}

func joinParts(parts []string) string {
	switch len(parts) {
	case 0:
		return ""
	case 1:
		return parts[0]
	}
	n := len(parts) - 1
	for _, p := range parts {
		n += len(p)
	}
	b := make([]byte, 0, n)
	for i, p := range parts {
		if i > 0 {
			b = append(b, '.')
		}
		b = append(b, p...)
	}
	return string(b)
}
