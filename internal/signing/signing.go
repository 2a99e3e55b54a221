package signing

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// The signing schemes, as written in an endpoint's signing attribute.
const (
	StandardWebhooks = "standard-webhooks"
	HMACSHA256       = "hmac-sha256"
	Stripe           = "stripe"
	GitHub           = "github"
)

// Schemes lists every supported scheme, the default first.
var Schemes = []string{StandardWebhooks, HMACSHA256, Stripe, GitHub}

// Header names set by the signers.
const (
	HeaderWebhookID        = "webhook-id"
	HeaderWebhookTimestamp = "webhook-timestamp"
	HeaderWebhookSignature = "webhook-signature"

	HeaderID        = "X-Webhook-Id"
	HeaderEvent     = "X-Webhook-Event"
	HeaderTimestamp = "X-Webhook-Timestamp"

	DefaultHMACHeader   = "X-Webhook-Signature"
	DefaultStripeHeader = "X-Signature"
	DefaultGitHubHeader = "X-Hub-Signature-256"
)

// Message is what a signer covers: one attempt at delivering one event.
type Message struct {
	ID   string // the event id, stable across retries
	Type string // the event type, e.g. "deal.stage.changed"
	// Timestamp is the attempt's time; every attempt is signed afresh.
	Timestamp time.Time
	Body      []byte
	// Memo, when set, is shared by the attempts of one event to many
	// endpoints: a secret they share signs once (see memo.go).
	Memo *Memo
}

// Signer sets the signature headers of its scheme on an outgoing request.
// A Signer is safe for concurrent use.
type Signer interface {
	Sign(h http.Header, m Message)
}

// Options tunes a scheme.
type Options struct {
	// SignatureHeader overrides the signature header name of the
	// hmac-sha256 (default X-Webhook-Signature), stripe (default X-Signature)
	// and github (default X-Hub-Signature-256) schemes. standard-webhooks
	// fixes its header names and refuses an override.
	SignatureHeader string
}

// signer implements every scheme; keys are ordered newest first.
type signer struct {
	scheme string
	header string
	keys   []*macKey
}

var _ Signer = (*signer)(nil)

// New returns the signer of scheme ("" means standard-webhooks) holding
// secrets, newest first; every secret signs. It checks that each secret
// is valid for the scheme.
func New(scheme string, secrets []string, opts Options) (Signer, error) {
	if scheme == "" {
		scheme = StandardWebhooks
	}
	header, err := signatureHeader(scheme, opts)
	if err != nil {
		return nil, err
	}
	keys, err := parseSecrets(scheme, secrets)
	if err != nil {
		return nil, err
	}
	macs := make([]*macKey, len(keys))
	for i, k := range keys {
		macs[i] = newMACKey(k)
	}
	return &signer{scheme: scheme, header: http.CanonicalHeaderKey(header), keys: macs}, nil
}

// signatureHeader returns the header carrying scheme's signature.
func signatureHeader(scheme string, opts Options) (string, error) {
	var def string
	switch scheme {
	case StandardWebhooks:
		if opts.SignatureHeader != "" {
			return "", fmt.Errorf("signature header %q: the standard-webhooks scheme always uses %s", opts.SignatureHeader, HeaderWebhookSignature)
		}
		return HeaderWebhookSignature, nil
	case HMACSHA256:
		def = DefaultHMACHeader
	case Stripe:
		def = DefaultStripeHeader
	case GitHub:
		def = DefaultGitHubHeader
	default:
		return "", unknownScheme(scheme)
	}
	if opts.SignatureHeader == "" {
		return def, nil
	}
	return opts.SignatureHeader, nil
}

func unknownScheme(scheme string) error {
	return fmt.Errorf("unknown signing scheme %q (want one of %v)", scheme, Schemes)
}

// parseSecrets decodes every secret for scheme; there must be at least one.
func parseSecrets(scheme string, secrets []string) ([][]byte, error) {
	if len(secrets) == 0 {
		return nil, fmt.Errorf("signing with %s: no secret", scheme)
	}
	keys := make([][]byte, len(secrets))
	for i, s := range secrets {
		k, err := ParseSecret(scheme, s)
		if err != nil {
			return nil, fmt.Errorf("secret %d of %d: %w", i+1, len(secrets), err)
		}
		keys[i] = k
	}
	return keys, nil
}

// Header names as http.Header.Set stores them (canonical form): Sign
// sets them directly rather than canonicalizing (and allocating) the same
// names on every attempt.
var (
	keyWebhookID        = http.CanonicalHeaderKey(HeaderWebhookID)
	keyWebhookTimestamp = http.CanonicalHeaderKey(HeaderWebhookTimestamp)
	keyWebhookSignature = http.CanonicalHeaderKey(HeaderWebhookSignature)
	keyID               = http.CanonicalHeaderKey(HeaderID)
	keyEvent            = http.CanonicalHeaderKey(HeaderEvent)
	keyTimestamp        = http.CanonicalHeaderKey(HeaderTimestamp)
)

// Sign sets the headers of the signer's scheme for m, replacing any
// earlier values, as http.Header.Set would.
func (s *signer) Sign(h http.Header, m Message) {
	ts := unixText(m.Timestamp)
	switch s.scheme {
	case StandardWebhooks:
		set(h, keyWebhookID, m.ID, keyWebhookTimestamp, ts, keyWebhookSignature, s.standardSignatures(m.Memo, m.ID, ts, m.Body))
	case HMACSHA256:
		set(h, keyID, m.ID, keyEvent, m.Type, keyTimestamp, ts)
		s.setEach(h, m.Memo, "", m.Body)
	case Stripe:
		set(h, keyID, m.ID, keyEvent, m.Type, s.header, s.stripeSignature(m.Memo, ts, m.Body))
	case GitHub:
		set(h, keyID, m.ID, keyEvent, m.Type)
		s.setEach(h, m.Memo, "sha256=", m.Body)
	}
}

// set sets each canonical key of kv (key, value, key, value…) to its one
// value; the values share one allocation. Each is a slice of capacity 1,
// so that a later Add to one key copies it instead of overwriting the next.
func set(h http.Header, kv ...string) {
	vals := make([]string, len(kv)/2)
	for i := range vals {
		vals[i] = kv[2*i+1]
		h[kv[2*i]] = vals[i : i+1 : i+1]
	}
}

// standardSignatures returns "v1,<sig> v1,<sig>…", one per key.
func (s *signer) standardSignatures(memo *Memo, id, ts string, body []byte) string {
	const sigLen = 3 + 44 // "v1," and the base64 of a SHA-256 MAC
	var b strings.Builder
	b.Grow(len(s.keys)*(sigLen+1) - 1)
	var mac [sha256.Size]byte
	var enc [44]byte
	for i, k := range s.keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("v1,")
		base64.StdEncoding.Encode(enc[:], memo.sum(mac[:0], k, body, id, ts))
		b.Write(enc[:])
	}
	return b.String()
}

// stripeSignature returns "t=<ts>,v1=<hex>,v1=<hex>…", one v1 per key.
func (s *signer) stripeSignature(memo *Memo, ts string, body []byte) string {
	var b strings.Builder
	b.Grow(len(ts) + 2 + len(s.keys)*(4+2*sha256.Size))
	b.WriteString("t=")
	b.WriteString(ts)
	var mac [sha256.Size]byte
	var enc [2 * sha256.Size]byte
	for _, k := range s.keys {
		b.WriteString(",v1=")
		hex.Encode(enc[:], memo.sum(mac[:0], k, body, ts))
		b.Write(enc[:])
	}
	return b.String()
}

// setEach sets one header line per key, newest first: prefix + hex HMAC of
// the body. The lines are cut from one string.
func (s *signer) setEach(h http.Header, memo *Memo, prefix string, body []byte) {
	w := len(prefix) + 2*sha256.Size
	var b strings.Builder
	b.Grow(len(s.keys) * w)
	var mac [sha256.Size]byte
	var enc [2 * sha256.Size]byte
	for _, k := range s.keys {
		b.WriteString(prefix)
		hex.Encode(enc[:], memo.sum(mac[:0], k, body))
		b.Write(enc[:])
	}
	all := b.String()
	lines := make([]string, len(s.keys))
	for i := range lines {
		lines[i] = all[i*w : (i+1)*w]
	}
	h[s.header] = lines[:len(lines):len(lines)]
}

// lastSecond holds the text of the unix second signed last: attempts made
// within one second share it.
var lastSecond atomic.Pointer[secondText]

type secondText struct {
	unix int64
	text string
}

// unixText is t's unix seconds in decimal.
func unixText(t time.Time) string {
	sec := t.Unix()
	if p := lastSecond.Load(); p != nil && p.unix == sec {
		return p.text
	}
	p := &secondText{unix: sec, text: strconv.FormatInt(sec, 10)}
	lastSecond.Store(p)
	return p.text
}

// standardMAC is HMAC(key, id "." ts "." body).
func standardMAC(key []byte, id, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	writeParts(m, []byte(id), []byte(ts), body)
	return m.Sum(nil)
}

// stripeMAC is HMAC(key, ts "." body).
func stripeMAC(key []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	writeParts(m, []byte(ts), body)
	return m.Sum(nil)
}

// bodyMAC is HMAC(key, body).
func bodyMAC(key, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return m.Sum(nil)
}

// writeParts writes parts joined by ".".
func writeParts(h hash.Hash, parts ...[]byte) {
	for i, p := range parts {
		if i > 0 {
			h.Write([]byte{'.'})
		}
		h.Write(p)
	}
}
