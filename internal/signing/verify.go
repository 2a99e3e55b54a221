package signing

import (
	"crypto/hmac"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultTolerance is how far a signed timestamp may be from the
// verifier's clock when Verify is given a zero tolerance.
const DefaultTolerance = 5 * time.Minute

// Verification failures; Verify wraps them with detail.
var (
	ErrMissingSignature = errors.New("missing signature header")
	ErrMalformed        = errors.New("malformed signature header")
	ErrNoMatch          = errors.New("no signature matches the secret")
	ErrTooOld           = errors.New("timestamp too old")
	ErrTooNew           = errors.New("timestamp too new")
)

// Verify checks that headers h and body carry a valid signature of scheme
// ("" means standard-webhooks) by any of secrets. Where the scheme signs a
// timestamp (standard-webhooks, stripe) it must be within tolerance of now:
// zero means DefaultTolerance, negative skips the check. Signatures are
// compared in constant time.
func Verify(scheme string, secrets []string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	return VerifyWith(scheme, secrets, Options{}, h, body, now, tolerance)
}

// VerifyWith is Verify for a scheme whose signature header was renamed
// with opts.
func VerifyWith(scheme string, secrets []string, opts Options, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	if scheme == "" {
		scheme = StandardWebhooks
	}
	header, err := signatureHeader(scheme, opts)
	if err != nil {
		return err
	}
	keys, err := parseSecrets(scheme, secrets)
	if err != nil {
		return err
	}
	if tolerance == 0 {
		tolerance = DefaultTolerance
	}
	switch scheme {
	case StandardWebhooks:
		err = verifyStandard(keys, h, body, now, tolerance)
	case Stripe:
		err = verifyStripe(keys, h.Get(header), body, now, tolerance)
	case HMACSHA256:
		err = verifyBody(keys, h.Values(header), "", body)
	case GitHub:
		err = verifyBody(keys, h.Values(header), "sha256=", body)
	}
	if err != nil {
		return fmt.Errorf("verifying %s signature: %w", scheme, err)
	}
	return nil
}

func verifyStandard(keys [][]byte, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	id, ts, sigs := h.Get(HeaderWebhookID), h.Get(HeaderWebhookTimestamp), h.Get(HeaderWebhookSignature)
	switch {
	case sigs == "":
		return fmt.Errorf("%w %s", ErrMissingSignature, HeaderWebhookSignature)
	case id == "":
		return fmt.Errorf("%w %s", ErrMissingSignature, HeaderWebhookID)
	case ts == "":
		return fmt.Errorf("%w %s", ErrMissingSignature, HeaderWebhookTimestamp)
	}
	if err := checkTimestamp(ts, now, tolerance); err != nil {
		return err
	}
	var given [][]byte
	for _, s := range strings.Fields(sigs) {
		version, sig, ok := strings.Cut(s, ",")
		if !ok || version != "v1" {
			continue
		}
		if b, err := base64.StdEncoding.DecodeString(sig); err == nil {
			given = append(given, b)
		}
	}
	if len(given) == 0 {
		return fmt.Errorf("%w: no v1 signature in %s", ErrMalformed, HeaderWebhookSignature)
	}
	for _, k := range keys {
		if anyEqual(given, standardMAC(k, id, ts, body)) {
			return nil
		}
	}
	return ErrNoMatch
}

func verifyStripe(keys [][]byte, value string, body []byte, now time.Time, tolerance time.Duration) error {
	if value == "" {
		return ErrMissingSignature
	}
	var ts string
	var given [][]byte
	for _, part := range strings.Split(value, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				given = append(given, b)
			}
		}
	}
	if ts == "" || len(given) == 0 {
		return fmt.Errorf("%w: want t=<unix>,v1=<hex>", ErrMalformed)
	}
	if err := checkTimestamp(ts, now, tolerance); err != nil {
		return err
	}
	for _, k := range keys {
		if anyEqual(given, stripeMAC(k, ts, body)) {
			return nil
		}
	}
	return ErrNoMatch
}

// verifyBody checks signatures over the body alone, given as header lines
// (or comma-separated values) of prefix + hex.
func verifyBody(keys [][]byte, values []string, prefix string, body []byte) error {
	var given [][]byte
	for _, line := range values {
		for _, v := range strings.Split(line, ",") {
			v, ok := strings.CutPrefix(strings.TrimSpace(v), prefix)
			if !ok {
				continue
			}
			if b, err := hex.DecodeString(v); err == nil {
				given = append(given, b)
			}
		}
	}
	if len(values) == 0 {
		return ErrMissingSignature
	}
	if len(given) == 0 {
		return fmt.Errorf("%w: want %s<hex>", ErrMalformed, prefix)
	}
	for _, k := range keys {
		if anyEqual(given, bodyMAC(k, body)) {
			return nil
		}
	}
	return ErrNoMatch
}

// checkTimestamp checks that unix-seconds ts is within tolerance of now
// (tolerance < 0: not checked).
func checkTimestamp(ts string, now time.Time, tolerance time.Duration) error {
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q is not unix seconds", ErrMalformed, ts)
	}
	if tolerance < 0 {
		return nil
	}
	age := now.Sub(time.Unix(sec, 0))
	switch {
	case age > tolerance:
		return fmt.Errorf("%w: signed %s ago, tolerance %s", ErrTooOld, age.Round(time.Second), tolerance)
	case -age > tolerance:
		return fmt.Errorf("%w: signed %s in the future, tolerance %s", ErrTooNew, (-age).Round(time.Second), tolerance)
	}
	return nil
}

// anyEqual reports whether want equals any of given, comparing in
// constant time.
func anyEqual(given [][]byte, want []byte) bool {
	ok := false
	for _, g := range given {
		if hmac.Equal(g, want) {
			ok = true
		}
	}
	return ok
}
