package endpointspec

import (
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCheckURL(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"https://crm.example.com/hooks":      "",
		"HTTP://crm.example.com:8080/in?x=1": "",
		"":                                   "is required",
		"ftp://example.com/x":                "http:// or https://",
		"/hook":                              "http:// or https://",
		"https:///hook":                      "has no host",
		"https://example.com/#x":             "#fragment",
		"http://[::1/":                       "does not parse",
		"http://exa mple.com:x/":             "a raw space at byte 10",
		"http://host/p?q=a b<c>":             "a raw space at byte 17: percent-encode it (%20)",
		"http://host/p?q=a%20b<c>":           `a raw "<" at byte 21`,
		"http://host/p\tq":                   "a tab at byte 13",
		"http://host/p\r\nX: y":              "a carriage return at byte 13",
		"http://host/p\n":                    "a line feed at byte 13",
		"http://host/p\x00":                  "the control character 0x00",
		"http://host/p\x7f":                  "the control character 0x7F",
		"https://example.com/#":              "#fragment",
		"https://example.com/p?a=1&b=%7B%7D": "",
		"https://münchen.example/ä?q=ö":      "",
		"https://example.com/" + strings.Repeat("a", MaxURLBytes): "longer than 2048 bytes",
	} {
		checkErr(t, "CheckURL("+raw+")", CheckURL(raw), want)
	}
}

func TestCheckEventFilter(t *testing.T) {
	t.Parallel()
	for f, want := range map[string]string{"deal.*": "", "*": "", "contact.created": "", " ": "empty name", "deal.[x": "not a valid glob"} {
		checkErr(t, "CheckEventFilter("+f+")", CheckEventFilter(f), want)
	}
}

func TestCheckSigning(t *testing.T) {
	t.Parallel()
	if s, err := CheckSigning(""); s != "standard-webhooks" || err != nil {
		t.Errorf(`CheckSigning("") = %q, %v`, s, err)
	}
	for _, s := range []string{"standard-webhooks", "hmac-sha256", "stripe", "github"} {
		if got, err := CheckSigning(s); got != s || err != nil {
			t.Errorf("CheckSigning(%q) = %q, %v", s, got, err)
		}
	}
	_, err := CheckSigning("rsa")
	checkErr(t, "CheckSigning(rsa)", err, `is one of standard-webhooks, hmac-sha256, stripe, github, not "rsa"`)
}

// TestCheckSecret: one rule for standard-webhooks secrets, wherever they
// come from: whsec_ and base64 of 24 to 64 bytes. Errors never repeat the
// secret.
func TestCheckSecret(t *testing.T) {
	t.Parallel()
	const good = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	cases := []struct{ scheme, secret, want string }{
		{"standard-webhooks", good, ""},
		{"", good, ""},
		{"standard-webhooks", strings.TrimPrefix(good, "whsec_"), `starts with "whsec_"`},
		{"standard-webhooks", "whsec_not base64!", "not valid base64"},
		{"standard-webhooks", "whsec_c2hvcnQ=", "this one holds 5"},
		{"standard-webhooks", "whsec_" + strings.Repeat("QUFB", 22), "this one holds 66"},
		{"standard-webhooks", "", "empty"},
		{"hmac-sha256", "any-string-secret-of-theirs", ""},
		{"github", "x", ""}, // CheckSecretStrength's business
		{"stripe", "", "empty"},
		{"standard-webhooks", good + "\n", "whitespace at its start or end"},
		{"standard-webhooks", " " + good, "whitespace at its start or end"},
		{"standard-webhooks", "whsec_MfKQ9r8GKYqrTwjU\nPD8ILPZIo2LaLaSw", "control character"},
		{"hmac-sha256", "any-string-secret-of-theirs\r\n", "whitespace at its start or end"},
		{"hmac-sha256", "any-string\x00secret-of-theirs", "control character"},
	}
	for _, c := range cases {
		err := CheckSecret(c.scheme, c.secret)
		checkErr(t, "CheckSecret("+c.scheme+")", err, c.want)
		if err != nil && c.secret != "" && strings.Contains(err.Error(), c.secret) {
			t.Errorf("the error repeats the secret: %v", err)
		}
	}
}

func TestCheckHeaders(t *testing.T) {
	t.Parallel()
	many := map[string]string{}
	for i := 0; i <= MaxHeaders; i++ {
		many["X-H"+strings.Repeat("a", i)] = "v"
	}
	cases := []struct {
		h    map[string]string
		want string
	}{
		{map[string]string{"X-Team": "crm", "Authorization": "Bearer x", "X-Tab": "a\tb"}, ""},
		{nil, ""},
		{map[string]string{"X Bad": "1"}, `header name "X Bad" is not a valid HTTP header name`},
		{map[string]string{"X-Ünïcode": "1"}, "not a valid HTTP header name"},
		{map[string]string{"webhook-signature": "x"}, "set by walhook"},
		{map[string]string{"host": "evil"}, "set by walhook"},
		{map[string]string{"Content-Type": "text/plain"}, "set by walhook"},
		{map[string]string{"X-Team": "a\r\nX-Injected: 1"}, "control characters"},
		{map[string]string{"X-Long": strings.Repeat("v", MaxHeaderValueBytes+1)}, "longer than 4096 bytes"},
		{many, "more than 20 entries"},
	}
	for _, c := range cases {
		checkErr(t, "CheckHeaders", CheckHeaders(c.h), c.want)
	}
}

// checkErr checks that err is nil when want is empty, else that it says
// want.
func checkErr(t *testing.T, what string, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("%s: %v, want no error", what, err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Errorf("%s: %v, want an error saying %q", what, err, want)
	}
}

func TestCheckSecretStrength(t *testing.T) {
	t.Parallel()
	cases := []struct{ scheme, secret, want string }{
		{"hmac-sha256", "a", "a hmac-sha256 secret holds at least 16 bytes; this one holds 1"},
		{"github", "fifteen-bytes!!", "holds 15"},
		{"stripe", "sixteen-bytes!!!", ""},
		{"standard-webhooks", "whsec_short", ""}, // CheckSecret's business
	}
	for _, c := range cases {
		err := CheckSecretStrength(c.scheme, c.secret)
		checkErr(t, "CheckSecretStrength("+c.scheme+")", err, c.want)
		if err != nil && len(c.secret) > 4 && strings.Contains(err.Error(), c.secret) {
			t.Errorf("the error repeats the secret: %v", err)
		}
	}
}

func TestBatchChecks(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int{"1MB": 1 << 20, "512KB": 512 << 10, "2MiB": 2 << 20, "4096": 4096, "10 KB": 10 << 10, "7B": 7} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MB", "1.5MB", "-1KB", "1GB", "lots"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q): no error", in)
		}
	}
	if CheckBatchEvents(0) == nil || CheckBatchEvents(1001) == nil || CheckBatchEvents(1000) != nil {
		t.Errorf("max_events bounds")
	}
	if _, err := CheckBatchBytes("100B"); err == nil {
		t.Errorf("max_bytes 100B accepted")
	}
	if v, err := CheckBatchWait("0s"); err != nil || v != 0 {
		t.Errorf("max_wait 0s: %v, %v", v, err)
	}
	if _, err := CheckBatchWait("1m"); err == nil {
		t.Errorf("max_wait 1m accepted")
	}
}
