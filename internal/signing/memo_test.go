package signing

import (
	"net/http"
	"testing"
	"time"
)

func TestMemoSignsOncePerSharedSecret(t *testing.T) {
	shared, other := GenerateSecret(), GenerateSecret()
	ring := NewKeyring()
	var signers []Signer
	for _, secrets := range [][]string{{shared}, {shared}, {other, shared}} {
		s, err := ring.New(StandardWebhooks, secrets, Options{})
		if err != nil {
			t.Fatal(err)
		}
		signers = append(signers, s)
	}
	body := []byte(`{"id":"evt_1","type":"contact.created"}`)
	now := time.Now()
	memo := &Memo{}
	var sigs []string
	for _, s := range signers {
		h := http.Header{}
		s.Sign(h, Message{ID: "evt_1", Type: "contact.created", Timestamp: now, Body: body, Memo: memo})
		if err := Verify(StandardWebhooks, []string{shared}, h, body, now, time.Minute); err != nil {
			t.Fatalf("signature does not verify: %v", err)
		}
		sigs = append(sigs, h.Get(HeaderWebhookSignature))
	}
	if sigs[0] != sigs[1] {
		t.Errorf("two endpoints sharing a secret signed differently: %q %q", sigs[0], sigs[1])
	}
	if n := len(memo.entries); n != 2 {
		t.Errorf("memo holds %d MACs, want 2 (one per distinct secret)", n)
	}
	// An equal body in another slice is not assumed to be the same body.
	copied := append([]byte(nil), body...)
	signers[0].Sign(http.Header{}, Message{ID: "evt_1", Timestamp: now, Body: copied, Memo: memo})
	if n := len(memo.entries); n != 3 {
		t.Errorf("memo holds %d MACs after another body, want 3", n)
	}
	// A later second is signed afresh.
	h := http.Header{}
	later := now.Add(time.Second)
	signers[0].Sign(h, Message{ID: "evt_1", Timestamp: later, Body: body, Memo: memo})
	if err := Verify(StandardWebhooks, []string{shared}, h, body, later, time.Minute); err != nil {
		t.Fatalf("later signature does not verify: %v", err)
	}
	ring.Retain(map[string]bool{other: true})
	if len(ring.keys) != 1 {
		t.Errorf("keyring keeps %d keys after Retain, want 1", len(ring.keys))
	}
}

func TestMemoOtherSchemes(t *testing.T) {
	ring := NewKeyring()
	for _, scheme := range []string{HMACSHA256, Stripe, GitHub} {
		secret := "a-secret-of-enough-length-" + scheme
		a, _ := ring.New(scheme, []string{secret}, Options{})
		b, _ := ring.New(scheme, []string{secret}, Options{})
		body := []byte(`{"x":1}`)
		now := time.Now()
		memo := &Memo{}
		ha, hb := http.Header{}, http.Header{}
		a.Sign(ha, Message{ID: "evt_2", Type: "t", Timestamp: now, Body: body, Memo: memo})
		b.Sign(hb, Message{ID: "evt_2", Type: "t", Timestamp: now, Body: body, Memo: memo})
		if err := Verify(scheme, []string{secret}, hb, body, now, time.Minute); err != nil {
			t.Errorf("%s: memoized signature does not verify: %v", scheme, err)
		}
		if len(memo.entries) != 1 {
			t.Errorf("%s: memo holds %d MACs, want 1", scheme, len(memo.entries))
		}
	}
}
