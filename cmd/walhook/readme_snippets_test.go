package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walhook/walhook/internal/sender"
	"github.com/walhook/walhook/internal/signing"
)

// verifyCase is one request a README snippet must judge.
type verifyCase struct {
	Name    string            `json:"name"`
	Secret  string            `json:"secret"`
	Headers map[string]string `json:"headers"` // lowercase names
	Body    string            `json:"body"`
	Want    bool              `json:"want"`
}

// receivedRequest is a request as an HTTP server got it.
type receivedRequest struct {
	header http.Header
	body   []byte
}

// signedDelivery sends body signed with secrets (at time at) through
// walhook's sender to a real HTTP server and returns what arrived.
func signedDelivery(t *testing.T, secrets []string, at time.Time, body string) receivedRequest {
	t.Helper()
	got := make(chan receivedRequest, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- receivedRequest{header: r.Header.Clone(), body: b}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	s, err := signing.New(signing.StandardWebhooks, secrets, signing.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	s.Sign(h, signing.Message{ID: "evt_readme0snippet0test0000001", Type: "deal.stage.changed", Timestamp: at, Body: []byte(body)})
	c := sender.New(sender.Options{})
	defer c.Close()
	if res := c.Send(context.Background(), sender.Request{URL: srv.URL, Header: h, Body: []byte(body)}); !res.OK() {
		t.Fatalf("sending: %+v", res)
	}
	return <-got
}

// verifyCases are the requests every snippet judges: a good one, a
// tampered body, a wrong secret, a stale timestamp and a rotation.
func verifyCases(t *testing.T) []verifyCase {
	t.Helper()
	secret, other := signing.GenerateSecret(), signing.GenerateSecret()
	body := `{"id":"evt_readme0snippet0test0000001","type":"deal.stage.changed","timestamp":"2026-11-23T14:57:19.913707Z","data":{"title":"Crème brûlée ☕","amount":15000}}`
	lower := func(r receivedRequest) map[string]string {
		m := map[string]string{}
		for k, v := range r.header {
			m[strings.ToLower(k)] = strings.Join(v, ", ")
		}
		return m
	}
	good := signedDelivery(t, []string{secret}, time.Now(), body)
	stale := signedDelivery(t, []string{secret}, time.Now().Add(-10*time.Minute), body)
	rotated := signedDelivery(t, []string{other, secret}, time.Now(), body)
	return []verifyCase{
		{Name: "signed", Secret: secret, Headers: lower(good), Body: string(good.body), Want: true},
		{Name: "tampered body", Secret: secret, Headers: lower(good), Body: strings.Replace(string(good.body), "15000", "15001", 1), Want: false},
		{Name: "wrong secret", Secret: other, Headers: lower(good), Body: string(good.body), Want: false},
		{Name: "stale timestamp", Secret: secret, Headers: lower(stale), Body: string(stale.body), Want: false},
		{Name: "rotation, old secret", Secret: secret, Headers: lower(rotated), Body: string(rotated.body), Want: true},
	}
}

// snippetHarness wraps each language's README snippet into a program that
// reads the cases (JSON on stdin) and prints true or false for each.
var snippetHarness = map[string]struct {
	interpreter string
	file        string
	harness     string
}{
	"js": {"node", "verify.js", `
const cases = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
for (const c of cases) console.log(String(verifyWebhook(c.secret, c.headers, Buffer.from(c.body, "utf8"))));
`},
	"python": {"python3", "verify.py", `
import json, sys
for c in json.load(sys.stdin):
    print(str(verify_webhook(c["secret"], c["headers"], c["body"].encode())).lower())
`},
	"php": {"php", "verify.php", `
$cases = json_decode(file_get_contents('php://stdin'), true);
foreach ($cases as $c) echo verify_webhook($c['secret'], $c['headers'], $c['body']) ? "true\n" : "false\n";
`},
}

// goHarness is the main package around the README's Go snippet.
const goHarness = `package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
)

func main() {
	var cases []struct {
		Secret  string            ` + "`json:\"secret\"`" + `
		Headers map[string]string ` + "`json:\"headers\"`" + `
		Body    string            ` + "`json:\"body\"`" + `
	}
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		panic(err)
	}
	for _, c := range cases {
		h := http.Header{}
		for k, v := range c.Headers {
			h.Set(k, v)
		}
		fmt.Println(Verify(c.Secret, h, []byte(c.Body)))
	}
}
`

// TestReadmeSignatureSnippets runs the README's verification snippets
// (Node, Python, Go, PHP) against real signed deliveries: each must accept
// the signed request and the rotated one, and refuse a tampered body, a
// wrong secret and a stale timestamp. An interpreter that is not installed
// skips its language; Go always runs.
func TestReadmeSignatureSnippets(t *testing.T) {
	t.Parallel()
	_, blocks := readmeBlocks(t)
	cases := verifyCases(t)
	input, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	for _, lang := range []string{"js", "python", "go", "php"} {
		t.Run(lang, func(t *testing.T) {
			t.Parallel()
			snippets := blocksOf(blocks, lang)
			if lang == "go" {
				snippets = goBlocks(blocks, "package webhook\n") // not the embedding example
			}
			if len(snippets) != 1 {
				t.Fatalf("want one %s block in README.md, have %d", lang, len(snippets))
			}
			snippet := snippets[0].text
			dir := t.TempDir()
			var cmd *exec.Cmd
			if lang == "go" {
				if !strings.HasPrefix(snippet, "package webhook\n") {
					t.Fatal("the Go snippet does not start with `package webhook`")
				}
				write(t, filepath.Join(dir, "go.mod"), "module readme\n\ngo 1.22\n")
				write(t, filepath.Join(dir, "webhook.go"), strings.Replace(snippet, "package webhook", "package main", 1))
				write(t, filepath.Join(dir, "main.go"), goHarness)
				cmd = exec.Command("go", "run", ".")
				cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off")
			} else {
				h := snippetHarness[lang]
				path, err := exec.LookPath(h.interpreter)
				if err != nil {
					t.Skipf("%s is not installed: the README's %s snippet was not run", h.interpreter, lang)
				}
				write(t, filepath.Join(dir, h.file), snippet+h.harness)
				cmd = exec.Command(path, h.file)
			}
			cmd.Dir = dir
			cmd.Stdin = strings.NewReader(string(input))
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("running the %s snippet: %v\n%s", lang, err, out)
			}
			got := strings.Fields(string(out))
			if len(got) != len(cases) {
				t.Fatalf("the %s snippet printed %q for %d cases", lang, out, len(cases))
			}
			for i, c := range cases {
				if want := map[bool]string{true: "true", false: "false"}[c.Want]; got[i] != want {
					t.Errorf("%s snippet, %s: got %s, want %s", lang, c.Name, got[i], want)
				}
			}
		})
	}
}

// goBlocks are the go blocks whose text starts with prefix.
func goBlocks(blocks []codeBlock, prefix string) []codeBlock {
	var out []codeBlock
	for _, b := range blocksOf(blocks, "go") {
		if strings.HasPrefix(b.text, prefix) {
			out = append(out, b)
		}
	}
	return out
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
