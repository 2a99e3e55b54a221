package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/walhook/walhook/internal/admin"
	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/rules"
	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/internal/store"
	"github.com/walhook/walhook/testenv"
)

// codeBlock is one fenced block of a Markdown file.
type codeBlock struct {
	lang string
	text string
	line int // of the opening fence
}

// readmeBlocks returns README.md's text and its fenced code blocks.
func readmeBlocks(t *testing.T) (string, []codeBlock) {
	t.Helper()
	return markdownBlocks(t, "README.md")
}

// docFiles are the pages whose commands and curl lines are checked.
var docFiles = []string{"README.md", "docs/operations.md"}

// markdownBlocks returns a Markdown file's text (path relative to the
// repository root) and its fenced code blocks.
func markdownBlocks(t *testing.T, path string) (string, []codeBlock) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("../..", path))
	if err != nil {
		t.Fatal(err)
	}
	var blocks []codeBlock
	var cur *codeBlock
	var body strings.Builder
	for i, line := range strings.Split(string(src), "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case cur == nil && strings.HasPrefix(trimmed, "```"):
			cur = &codeBlock{lang: strings.TrimPrefix(trimmed, "```"), line: i + 1}
			body.Reset()
		case cur != nil && trimmed == "```":
			cur.text = body.String()
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			body.WriteString(line + "\n")
		}
	}
	if cur != nil {
		t.Fatalf("%s: code block at line %d is not closed", path, cur.line)
	}
	return string(src), blocks
}

// blocksOf returns the blocks of one language.
func blocksOf(blocks []codeBlock, lang string) []codeBlock {
	var out []codeBlock
	for _, b := range blocks {
		if b.lang == lang {
			out = append(out, b)
		}
	}
	return out
}

// TestReadmeTwoCommands checks the README's two commands: the demo, and the
// test command that CI (.ci/run) runs, word for word.
func TestReadmeTwoCommands(t *testing.T) {
	t.Parallel()
	_, blocks := readmeBlocks(t)
	sh := blocksOf(blocks, "sh")
	if len(sh) == 0 {
		t.Fatal("README.md has no sh block")
	}
	lines := strings.Split(strings.TrimSpace(sh[0].text), "\n")
	if len(lines) != 2 || lines[0] != "go run ./cmd/walhook demo" || !strings.HasPrefix(lines[1], "go test ") {
		t.Fatalf("the first sh block (line %d) is not the two commands: %q", sh[0].line, lines)
	}
	ci, err := os.ReadFile("../../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	var ciTest string
	for _, l := range strings.Split(string(ci), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "go test ") {
			ciTest = strings.TrimSpace(l)
		}
	}
	if ciTest != lines[1] {
		t.Errorf("README's test command %q differs from .ci/run's %q", lines[1], ciTest)
	}
}

var (
	// walhookCommand finds `walhook <subcommand> [args]` in code, also as
	// `go run ./cmd/walhook <subcommand>`.
	walhookCommand = regexp.MustCompile("(?:^|/)walhook ([a-z]+)((?: +[^\\s`|;#]+)*)")
	inlineCode     = regexp.MustCompile("`([^`\n]+)`")
)

// TestReadmeSubcommands checks that every walhook subcommand the README
// and the docs/ pages show exists and accepts the flags shown with it.
func TestReadmeSubcommands(t *testing.T) {
	t.Parallel()
	var code []string
	pages, _ := filepath.Glob("../../docs/*.md")
	for _, doc := range append([]string{"README.md"}, pages...) {
		doc = strings.TrimPrefix(doc, "../../")
		src, blocks := markdownBlocks(t, doc)
		for _, b := range blocks {
			if b.lang == "sh" || b.lang == "" {
				for _, l := range strings.Split(b.text, "\n") {
					code = append(code, strings.TrimSpace(l))
				}
			}
		}
		for _, m := range inlineCode.FindAllStringSubmatch(src, -1) {
			code = append(code, m[1])
		}
	}
	seen := 0
	for _, line := range code {
		for _, m := range walhookCommand.FindAllStringSubmatch(line, -1) {
			if m[1] == "help" {
				continue
			}
			seen++
			if err := checkInvocation(append([]string{m[1]}, strings.Fields(m[2])...)); err != nil {
				t.Errorf("the docs show a command walhook does not accept: %v: %s", err, line)
			}
		}
	}
	if seen < 5 {
		t.Errorf("found only %d walhook commands in the docs", seen)
	}
}

// readmeConfig parses the README's example config (its first hcl block)
// with the environment it asks for.
func readmeConfig(t *testing.T, blocks []codeBlock) (*config.Config, string) {
	t.Helper()
	hcl := blocksOf(blocks, "hcl")
	if len(hcl) == 0 {
		t.Fatal("README.md has no hcl block")
	}
	t.Setenv("DATABASE_URL", "postgres://walhook@localhost:5432/app")
	t.Setenv("CRM_WEBHOOK_SECRET", signing.GenerateSecret())
	cfg, diags := config.Parse([]byte(hcl[0].text), "README.md")
	if diags.HasErrors() {
		t.Fatalf("README.md's example config (line %d) does not load: %v", hcl[0].line, diags)
	}
	if _, err := rules.Compile(cfg); err != nil {
		t.Fatalf("README.md's example config does not compile: %v", err)
	}
	return cfg, hcl[0].text
}

// TestReadmeExample checks the example config and that the request shown
// after it is one that config produces, correctly signed with the secret
// the README names. Not parallel: it sets environment variables for env().
func TestReadmeExample(t *testing.T) {
	src, blocks := readmeBlocks(t)
	cfg, _ := readmeConfig(t, blocks)
	if n := strings.Count(blocksOf(blocks, "hcl")[0].text, "\n"); n > 40 {
		t.Errorf("the example config has %d lines; keep it short", n)
	}

	reqs := blocksOf(blocks, "http")
	if len(reqs) != 1 {
		t.Fatalf("want one http block, have %d", len(reqs))
	}
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(strings.Replace(reqs[0].text, "\n\n", "\r\n\r\n", 1))))
	if err != nil {
		t.Fatalf("the http block does not parse as a request: %v", err)
	}
	body, _ := io.ReadAll(req.Body)
	body = []byte(strings.TrimSuffix(string(body), "\n"))
	if req.ContentLength != int64(len(body)) {
		t.Errorf("Content-Length %d, body has %d bytes", req.ContentLength, len(body))
	}
	secret := regexp.MustCompile("`(whsec_[A-Za-z0-9+/=]+)`").FindStringSubmatch(src)
	if secret == nil {
		t.Fatal("the README does not name the example request's secret")
	}
	if err := signing.Verify("", []string{secret[1]}, req.Header, body, time.Now(), -1); err != nil {
		t.Errorf("the example request's signature does not verify: %v", err)
	}
	var payload struct {
		ID   string         `json:"id"`
		Type string         `json:"type"`
		Data map[string]any `json:"data"`
	}
	if err := json.Unmarshal(body, &payload); err != nil {
		t.Fatalf("the example body is not JSON: %v", err)
	}
	if payload.ID != req.Header.Get("webhook-id") {
		t.Errorf("body id %q differs from webhook-id %q", payload.ID, req.Header.Get("webhook-id"))
	}
	var ev *config.Event
	for _, e := range cfg.Events {
		if e.Name == payload.Type {
			ev = e
		}
	}
	if ev == nil || !cfg.Endpoints[0].Matches(payload.Type) {
		t.Fatalf("the example request's event %q is not one the example config sends to its endpoint", payload.Type)
	}
	var keys []string
	for k := range payload.Data {
		keys = append(keys, k)
	}
	for _, k := range []string{"id", "title", "amount", "stage", "previous_stage"} {
		if !slices.Contains(keys, k) {
			t.Errorf("the example data lacks %q, which the example rule sets: %v", k, keys)
		}
	}
}

var (
	curlURL    = regexp.MustCompile(`http://127\.0\.0\.1:8080(/[^\s"']*)`)
	curlMethod = regexp.MustCompile(`-X ([A-Z]+)`)
	curlData   = regexp.MustCompile(`-d '([^']*)'`)
)

// TestReadmeCurl runs the curl examples of the README and the operations
// page against the admin API serving the README's example config: each
// must succeed. Not parallel: it sets environment variables for env().
func TestReadmeCurl(t *testing.T) {
	_, blocks := readmeBlocks(t)
	cfg, _ := readmeConfig(t, blocks)
	db := testenv.NewEmptyDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, db.Pool, "walhook")
	if err != nil {
		t.Fatalf("opening store: %v", err)
	}
	compiled, err := rules.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const token = "readme-token-0123456789"
	srv := httptest.NewServer(admin.New(admin.Options{
		Store: st, Tokens: []string{token}, Events: compiled.Catalogue(),
		ConfigEndpoints: admin.ConfigEndpoints(cfg.Endpoints), Logger: zerolog.Nop(),
	}))
	defer srv.Close()

	var lines []string
	for _, doc := range docFiles {
		src, _ := markdownBlocks(t, doc)
		for _, l := range strings.Split(src, "\n") {
			lines = append(lines, l)
		}
		for _, m := range inlineCode.FindAllStringSubmatch(src, -1) {
			lines = append(lines, m[1])
		}
	}
	n := 0
	for _, line := range lines {
		if !strings.HasPrefix(line, "curl ") {
			continue
		}
		n++
		m := curlURL.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("curl example without a URL on 127.0.0.1:8080: %s", line)
			continue
		}
		method, data := http.MethodGet, ""
		if d := curlData.FindStringSubmatch(line); d != nil {
			method, data = http.MethodPost, d[1]
		}
		if mm := curlMethod.FindStringSubmatch(line); mm != nil {
			method = mm[1]
		}
		req, _ := http.NewRequestWithContext(ctx, method, srv.URL+m[1], strings.NewReader(data))
		if strings.Contains(line, `-H "Authorization: Bearer $WALHOOK_ADMIN_TOKEN"`) {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if strings.Contains(line, "Content-Type: application/json") {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode >= 300 {
			t.Errorf("%s %s: %d %s", method, m[1], res.StatusCode, answer)
		}
	}
	if n == 0 {
		t.Error("the docs have no curl example")
	}
}

// TestReadmeLinks checks that the README's relative links lead to files
// (docs/outbox.md may still be in the making: it is reported, not failed).
func TestReadmeLinks(t *testing.T) {
	t.Parallel()
	src, _ := readmeBlocks(t)
	links := regexp.MustCompile(`\]\(([^)#:]+)\)`).FindAllStringSubmatch(src, -1)
	if len(links) < 4 {
		t.Fatalf("only %d relative links", len(links))
	}
	for _, l := range links {
		if _, err := os.Stat(filepath.Join("../..", l[1])); err != nil {
			if l[1] == "docs/outbox.md" {
				t.Logf("README links %s, which is not written yet", l[1])
				continue
			}
			t.Errorf("README links %s: %v", l[1], err)
		}
	}
}

// TestOperationsMetrics checks that docs/operations.md names every metric
// notMetrics are names in docs/operations.md that look like metrics and
// are not: the default publication of tables without a primary key, and
// the triggers teardown lists.
var notMetrics = map[string]bool{"walhook_inserts": true,
	"walhook_capture": true, "walhook_capture_truncate": true, "walhook_notify": true}

// walhook exports, and no other.
func TestOperationsMetrics(t *testing.T) {
	t.Parallel()
	sources, _ := filepath.Glob("../../internal/metrics/*.go")
	sources = append(sources, "../../internal/backfill/metrics.go")
	name := regexp.MustCompile(`"(walhook_[a-z_]+)"`)
	exported := map[string]bool{}
	for _, p := range sources {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range name.FindAllStringSubmatch(string(src), -1) {
			exported[m[1]] = true
		}
	}
	if len(exported) < 10 {
		t.Fatalf("found only %d metric names in internal/metrics", len(exported))
	}
	doc, _ := markdownBlocks(t, "docs/operations.md")
	mentioned := map[string]bool{}
	for _, m := range regexp.MustCompile(`\bwalhook_[a-z_]+`).FindAllString(doc, -1) {
		m = strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count")
		if notMetrics[m] {
			continue
		}
		mentioned[m] = true
		if !exported[m] {
			t.Errorf("docs/operations.md names %s, which walhook does not export", m)
		}
	}
	for m := range exported {
		if !mentioned[m] {
			t.Errorf("docs/operations.md does not mention %s", m)
		}
	}
}

// TestReadmeGoExample type-checks the README's Go programs (go blocks of
// package main) against the public packages they import.
func TestReadmeGoExample(t *testing.T) {
	t.Parallel()
	_, blocks := readmeBlocks(t)
	gos := goBlocks(blocks, "package main\n")
	if len(gos) == 0 {
		t.Fatal("README.md has no Go program (a go block starting with package main)")
	}
	if err := os.MkdirAll("testdata", 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove("testdata") }) // only if empty
	for _, b := range gos {
		dir, err := os.MkdirTemp("testdata", "readme-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(b.text), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("go", "vet", "./"+dir).CombinedOutput(); err != nil {
			t.Errorf("README.md's go block at line %d does not build: %v\n%s", b.line, err, out)
		}
		if strings.Contains(b.text, "/internal/") {
			t.Errorf("README.md's go block at line %d imports an internal package", b.line)
		}
	}
}
