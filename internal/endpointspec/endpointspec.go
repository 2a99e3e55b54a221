// Package endpointspec holds the rules every endpoint field must follow,
// whether the endpoint comes from an endpoint block of the config file
// (internal/config) or from the admin API (internal/admin): one validator,
// so that both accept and refuse the same values.
//
// Secrets: a standard-webhooks secret is "whsec_" followed by the base64
// of 24 to 64 random bytes, in the config and in the API alike; the other
// schemes take any string of at least 16 bytes (the API refuses a shorter
// one, the config warns). No secret has whitespace at its ends or control
// characters. (signing.ParseSecret, which receivers
// such as `walhook listen` use, also reads one without the prefix, as the
// Standard Webhooks libraries do; walhook never stores one.)
//
// Each check returns an error phrased to follow the field's name ("url
// must not have a #fragment"); the caller adds where the field came from.
package endpointspec

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/walhook/walhook/internal/limit"
	"github.com/walhook/walhook/internal/signing"
)

// Limits on endpoint fields.
const (
	MaxURLBytes         = 2048
	MaxEventFilters     = 100
	MaxHeaders          = 20
	MaxHeaderValueBytes = 4096
)

// CheckURL checks an endpoint URL: an absolute http(s) URL with a host,
// no fragment, and only characters an HTTP client can put in a request
// line as they are (no raw space, control character or one of "<>\^`{|}
// : percent-encode them). Whether its address may be called is netguard's
// decision.
func CheckURL(raw string) error {
	if raw == "" {
		return errors.New("is required")
	}
	if len(raw) > MaxURLBytes {
		return fmt.Errorf("is longer than %d bytes", MaxURLBytes)
	}
	if err := checkURLChars(raw); err != nil {
		return err
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("does not parse as a URL: %w", err)
	}
	if s := strings.ToLower(u.Scheme); s != "https" && s != "http" {
		return errors.New("must be an http:// or https:// URL")
	}
	if u.Hostname() == "" {
		return errors.New("has no host")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return errors.New("must not have a #fragment (a fragment is never sent to the server)")
	}
	return nil
}

// checkURLChars refuses the bytes a conforming client cannot send in a
// request line as they are: a client would send a raw space or control
// character in the query as it is, and the receiver answers 400.
func checkURLChars(raw string) error {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		var what string
		switch {
		case c == ' ':
			what = "a raw space"
		case c == '\t':
			what = "a tab"
		case c == '\r':
			what = "a carriage return"
		case c == '\n':
			what = "a line feed"
		case c < 0x20 || c == 0x7f:
			what = fmt.Sprintf("the control character 0x%02X", c)
		case strings.IndexByte(`"<>\^`+"`"+`{|}`, c) >= 0:
			what = fmt.Sprintf("a raw %q", string(c))
		default:
			continue
		}
		return fmt.Errorf("has %s at byte %d: percent-encode it (%%%02X)", what, i, c)
	}
	return nil
}

// CheckEventFilter checks one entry of an endpoint's events: an event name
// or a glob ("deal.*", "*"). Whether it matches an event is the caller's
// check: the config and the API know different catalogues.
func CheckEventFilter(filter string) error {
	if strings.TrimSpace(filter) == "" {
		return errors.New("must not contain an empty name")
	}
	if _, err := path.Match(filter, ""); err != nil {
		return fmt.Errorf("filter %q is not a valid glob", filter)
	}
	return nil
}

// CheckSigning checks a signing scheme and returns it with the default
// (standard-webhooks) filled in.
func CheckSigning(scheme string) (string, error) {
	if scheme == "" {
		return signing.StandardWebhooks, nil
	}
	for _, known := range signing.Schemes {
		if scheme == known {
			return scheme, nil
		}
	}
	return "", fmt.Errorf("is one of %s, not %q", strings.Join(signing.Schemes, ", "), scheme)
}

// MinSecretBytes is the shortest secret of the schemes that take any
// string (hmac-sha256, stripe, github): CheckSecretStrength's rule.
const MinSecretBytes = 16

// CheckSecret checks a signing secret for scheme: never whitespace at its
// ends or control characters anywhere (a secret read from a file with its
// trailing newline would sign with the newline, and the receiver without),
// and for standard-webhooks "whsec_" and base64 of 24 to 64 bytes. The
// error never contains the secret.
func CheckSecret(scheme, secret string) error {
	if secret != "" && strings.TrimSpace(secret) != secret {
		return errors.New("the secret has whitespace at its start or end (a trailing newline from a file?); remove it, the receiver would not sign with it")
	}
	for _, r := range secret {
		if r < 0x20 || r == 0x7f {
			return errors.New("the secret contains a control character")
		}
	}
	if scheme != signing.StandardWebhooks && scheme != "" {
		if secret == "" {
			return errors.New("the secret is empty")
		}
		return nil
	}
	if secret == "" {
		return errors.New("the secret is empty: a standard-webhooks secret is whsec_ followed by base64 of 24 to 64 random bytes")
	}
	raw, ok := strings.CutPrefix(secret, signing.SecretPrefix)
	if !ok {
		return errors.New("a standard-webhooks secret starts with \"whsec_\" followed by base64 of 24 to 64 random bytes (generate one with: echo whsec_$(openssl rand -base64 32))")
	}
	key, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		return errors.New("the part after \"whsec_\" of a standard-webhooks secret is not valid base64")
	}
	if len(key) < 24 || len(key) > 64 {
		return fmt.Errorf("a standard-webhooks secret holds 24 to 64 bytes; this one holds %d", len(key))
	}
	return nil
}

// CheckSecretStrength checks that a secret of a scheme that takes any
// string holds at least MinSecretBytes (a standard-webhooks secret's
// length is CheckSecret's rule). The API refuses a weaker secret; the
// config file warns. The error never contains the secret.
func CheckSecretStrength(scheme, secret string) error {
	if scheme == signing.StandardWebhooks || scheme == "" || len(secret) >= MinSecretBytes {
		return nil
	}
	return fmt.Errorf("a %s secret holds at least %d bytes; this one holds %d (generate one with: openssl rand -hex 32)", scheme, MinSecretBytes, len(secret))
}

// tenantRE is what a tenant name given to the API must match: a letter or
// digit, then letters, digits and . _ : @ -, at most 128 bytes. Safe in a
// URL path segment (/ui/t/<tenant>/), a log line and a page.
var tenantRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$`)

// CheckTenant checks a tenant name (non-empty; "no tenant" is the
// caller's case).
func CheckTenant(name string) error {
	if !tenantRE.MatchString(name) {
		return errors.New("must start with a letter or digit and hold only letters, digits and . _ : @ - (at most 128 bytes)")
	}
	return nil
}

// reservedHeaders are set by walhook itself and cannot be overridden.
var reservedHeaders = map[string]bool{
	"Host": true, "Content-Length": true, "Content-Type": true, "Transfer-Encoding": true,
	"Connection": true, "Te": true, "Trailer": true, "Upgrade": true, "Keep-Alive": true,
	"Proxy-Connection": true, "Expect": true,
	http.CanonicalHeaderKey(signing.HeaderWebhookID):        true,
	http.CanonicalHeaderKey(signing.HeaderWebhookTimestamp): true,
	http.CanonicalHeaderKey(signing.HeaderWebhookSignature): true,
	signing.HeaderID: true, signing.HeaderEvent: true, signing.HeaderTimestamp: true,
	signing.DefaultHMACHeader: true, signing.DefaultStripeHeader: true, signing.DefaultGitHubHeader: true,
}

// CheckHeaders checks an endpoint's extra request headers: at most
// MaxHeaders, valid names and values, none that walhook sets itself.
func CheckHeaders(h map[string]string) error {
	if len(h) > MaxHeaders {
		return fmt.Errorf("has more than %d entries", MaxHeaders)
	}
	names := make([]string, 0, len(h))
	for name := range h {
		names = append(names, name)
	}
	sort.Strings(names) // the same header is reported every time
	for _, name := range names {
		if err := checkHeader(name, h[name]); err != nil {
			return err
		}
	}
	return nil
}

func checkHeader(name, value string) error {
	switch {
	case !validHeaderName(name):
		return fmt.Errorf("header name %q is not a valid HTTP header name", name)
	case reservedHeaders[http.CanonicalHeaderKey(name)]:
		return fmt.Errorf("header %q is set by walhook and cannot be overridden", name)
	case len(value) > MaxHeaderValueBytes:
		return fmt.Errorf("header %q has a value longer than %d bytes", name, MaxHeaderValueBytes)
	case !validHeaderValue(value):
		return fmt.Errorf("header %q has a value with control characters", name)
	}
	return nil
}

// validHeaderName reports whether name is an RFC 9110 token.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHeaderValue refuses invalid UTF-8 and control characters other
// than tab.
func validHeaderValue(v string) bool {
	if !utf8.ValidString(v) {
		return false
	}
	for _, r := range v {
		if (r < 0x20 && r != '\t') || r == 0x7f {
			return false
		}
	}
	return true
}

// CheckRateLimit checks a rate_limit: requests per second, minute or hour
// ("500/s", "3000/m", "10/h"), first attempts and retries together. An
// empty one is no limit (the zero Rate); the config refuses it where the
// attribute is written, the API takes it as removing the limit. Its error
// names the value ("rate \"5/d\": the unit after / is s, m or h").
func CheckRateLimit(s string) (limit.Rate, error) {
	return limit.ParseRate(s)
}
