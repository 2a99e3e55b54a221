package store

import "crypto/sha256"

// BatchID is the id of a batch request carrying the deliveries ids, in
// that order: "bat_" and 26 base32 characters of their hash, so the same
// deliveries sent together again carry the same webhook-id.
func BatchID(deliveryIDs []string) string {
	h := sha256.New()
	for _, id := range deliveryIDs {
		h.Write([]byte(id))
		h.Write([]byte{'\n'})
	}
	return idText("bat_", h.Sum(nil)[:16])
}
