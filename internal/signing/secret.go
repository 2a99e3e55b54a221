package signing

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
)

// SecretPrefix starts every Standard Webhooks secret.
const SecretPrefix = "whsec_"

// Standard Webhooks secrets decode to this many bytes.
const (
	minSecretBytes = 24
	maxSecretBytes = 64
)

// ParseSecret returns the HMAC key of secret s under scheme. For
// standard-webhooks s is "whsec_" + base64 of 24 to 64 bytes (the prefix may
// be left out) and the key is the decoded bytes. For the other schemes the
// key is s's bytes as written, including any "whsec_" prefix, as their
// receivers use it. Errors never contain the secret.
//
// Leaving the prefix out is for receivers (walhook listen), as the Standard
// Webhooks libraries allow it; an endpoint's secret, from the config or the
// API, must have it (internal/endpointspec.CheckSecret).
func ParseSecret(scheme, s string) ([]byte, error) {
	switch scheme {
	case StandardWebhooks, "":
		raw := strings.TrimPrefix(s, SecretPrefix)
		key, err := base64.StdEncoding.DecodeString(raw)
		if err != nil {
			return nil, fmt.Errorf("parsing standard-webhooks secret: want %s followed by base64: %w", SecretPrefix, err)
		}
		if len(key) < minSecretBytes || len(key) > maxSecretBytes {
			return nil, fmt.Errorf("parsing standard-webhooks secret: decodes to %d bytes, want %d to %d", len(key), minSecretBytes, maxSecretBytes)
		}
		return key, nil
	case HMACSHA256, Stripe, GitHub:
		if s == "" {
			return nil, fmt.Errorf("parsing %s secret: empty", scheme)
		}
		return []byte(s), nil
	default:
		return nil, unknownScheme(scheme)
	}
}

// GenerateSecret returns a new random secret: "whsec_" + base64 of 32
// random bytes, valid for every scheme.
func GenerateSecret() string {
	var b [32]byte
	rand.Read(b[:]) // never fails: crypto/rand.Read aborts the program instead
	return SecretPrefix + base64.StdEncoding.EncodeToString(b[:])
}
