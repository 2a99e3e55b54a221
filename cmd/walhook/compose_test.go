package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"gopkg.in/yaml.v3"

	"github.com/walhook/walhook/cmd/walhook/demo"
	"github.com/walhook/walhook/internal/config"
)

// composeFile is the part of testenv/docker-compose.yml the test reads.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Build       *composeBuild     `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	DependsOn   map[string]any    `yaml:"depends_on"`
}

type composeBuild struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
}

const testenvDir = "../../testenv"

// interpolation is compose's ${NAME:-default}.
var interpolation = regexp.MustCompile(`\$\{([A-Z_]+):-([^}]*)\}`)

// resolve replaces each ${NAME:-default} by its default.
func resolve(s string) string { return interpolation.ReplaceAllString(s, "$2") }

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(testenvDir, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var f composeFile
	if err := yaml.Unmarshal(src, &f); err != nil {
		t.Fatalf("testenv/docker-compose.yml: %v", err)
	}
	return f
}

// TestComposeFile keeps testenv/docker-compose.yml honest without Docker:
// the files it builds and mounts exist, its commands are real walhook
// subcommands and flags, its config loads with the environment it gives and
// points at its receivers, and Postgres is set up for logical decoding.
// Not parallel: it sets environment variables for env().
func TestComposeFile(t *testing.T) {
	f := loadCompose(t)
	for _, name := range []string{"postgres", "walhook", "receiver-crm", "receiver-legacy", "story"} {
		if _, ok := f.Services[name]; !ok {
			t.Fatalf("service %s is missing", name)
		}
	}

	pg := f.Services["postgres"]
	if pg.Image != "postgres:17" {
		t.Errorf("postgres image %q, want postgres:17", pg.Image)
	}
	pgCmd := strings.Join(pg.Command, " ")
	for _, want := range []string{"wal_level=logical", "max_replication_slots=", "max_wal_senders="} {
		if !strings.Contains(pgCmd, want) {
			t.Errorf("postgres command %q lacks %s", pgCmd, want)
		}
	}
	if !slices.Contains(pg.Volumes, "../internal/pgcluster/schema.sql:/docker-entrypoint-initdb.d/01-schema.sql:ro") {
		t.Errorf("postgres does not load internal/pgcluster/schema.sql: %v", pg.Volumes)
	}

	// Every mounted file exists, relative to testenv/.
	for name, s := range f.Services {
		for _, v := range s.Volumes {
			src := strings.Split(v, ":")[0]
			if _, err := os.Stat(filepath.Join(testenvDir, src)); err != nil {
				t.Errorf("service %s mounts %s: %v", name, src, err)
			}
		}
		for dep := range s.DependsOn {
			if _, ok := f.Services[dep]; !ok {
				t.Errorf("service %s depends on unknown service %s", name, dep)
			}
		}
	}

	// walhook's services build from testenv/Dockerfile with the repository
	// as context, and run real subcommands with real flags.
	for _, name := range []string{"walhook", "receiver-crm", "receiver-legacy"} {
		s := f.Services[name]
		if s.Build == nil {
			t.Errorf("service %s has no build section", name)
			continue
		}
		ctxDir := filepath.Join(testenvDir, s.Build.Context)
		if _, err := os.Stat(filepath.Join(ctxDir, "go.mod")); err != nil {
			t.Errorf("service %s: build context %s is not the repository root", name, s.Build.Context)
		}
		if _, err := os.Stat(filepath.Join(ctxDir, s.Build.Dockerfile)); err != nil {
			t.Errorf("service %s: dockerfile: %v", name, err)
		}
		checkCommand(t, name, s.Command)
	}
	checkDockerfile(t)

	// The config walhook runs loads with the environment the file gives
	// it, and each endpoint reaches a receiver with the matching scheme
	// and secret.
	wh := f.Services["walhook"]
	cfgPath := flagValue(wh.Command, "-c")
	var mounted string
	for _, v := range wh.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == cfgPath {
			mounted = filepath.Join(testenvDir, parts[0])
		}
	}
	if mounted == "" {
		t.Fatalf("walhook's config %s is not mounted", cfgPath)
	}
	cfg := parseWithEnv(t, mounted, wh.Environment)
	if cfg.Admin == nil || !strings.HasSuffix(cfg.Admin.Listen, ":8080") || !slices.Contains(wh.Ports, "127.0.0.1:8080:8080") {
		t.Errorf("the admin listener is not published on 127.0.0.1:8080: %v, ports %v", cfg.Admin, wh.Ports)
	}
	if !strings.Contains(wh.Environment["DATABASE_URL"], "@postgres:5432/crm") {
		t.Errorf("DATABASE_URL %q does not point at the postgres service", wh.Environment["DATABASE_URL"])
	}
	for _, ep := range cfg.Endpoints {
		host := strings.TrimPrefix(ep.URL, "http://")
		host, _, _ = strings.Cut(host, "/")
		svcName, port, _ := strings.Cut(host, ":")
		rcv, ok := f.Services[svcName]
		if !ok {
			t.Errorf("endpoint %s: %s is no service of the compose file", ep.Name, ep.URL)
			continue
		}
		if got := flagValue(rcv.Command, "--port"); got != port {
			t.Errorf("endpoint %s: port %s, but %s listens on %s", ep.Name, port, svcName, got)
		}
		scheme := flagValue(rcv.Command, "--scheme")
		if scheme == "" {
			scheme = "standard-webhooks"
		}
		if scheme != ep.Signing {
			t.Errorf("endpoint %s signs with %s, its receiver checks %s", ep.Name, ep.Signing, scheme)
		}
		if secret := resolve(rcv.Environment["WALHOOK_SECRET"]); len(ep.Secrets) == 0 || secret != ep.Secrets[0] {
			t.Errorf("endpoint %s: the receiver's secret is not the endpoint's", ep.Name)
		}
	}
	sameRules(t, cfg)

	// The story service plays the demo's story.
	story, err := os.ReadFile(filepath.Join(testenvDir, "story.sql"))
	if err != nil {
		t.Fatal(err)
	}
	for _, sql := range demo.StorySQL() {
		if !strings.Contains(string(story), sql) {
			t.Errorf("testenv/story.sql lacks the demo's step:\n%s", sql)
		}
	}
}

// checkCommand checks that args run a real subcommand that has every flag
// used.
func checkCommand(t *testing.T, service string, args []string) {
	t.Helper()
	if len(args) == 0 {
		t.Errorf("service %s has no command", service)
		return
	}
	if err := checkInvocation(args); err != nil {
		t.Errorf("service %s: %v", service, err)
	}
}

// flagValue returns the value after flag in args ("" if absent).
func flagValue(args []string, flag string) string {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// checkDockerfile checks that testenv/Dockerfile copies every file it
// names and every package the walhook command is built from.
func checkDockerfile(t *testing.T) {
	t.Helper()
	f, err := os.Open(filepath.Join(testenvDir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var copied []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 || fields[0] != "COPY" || strings.HasPrefix(fields[1], "--from") {
			continue
		}
		for _, src := range fields[1 : len(fields)-1] {
			if _, err := os.Stat(filepath.Join("../..", src)); err != nil {
				t.Errorf("Dockerfile copies %s: %v", src, err)
			}
			copied = append(copied, strings.TrimSuffix(strings.TrimPrefix(src, "./"), "/"))
		}
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const module = "github.com/walhook/walhook/"
	for _, pkg := range strings.Fields(string(out)) {
		rel, ok := strings.CutPrefix(pkg, module)
		if !ok {
			continue
		}
		top, _, _ := strings.Cut(rel, "/")
		if !slices.Contains(copied, top) {
			t.Errorf("Dockerfile does not copy %s, which walhook is built from", top)
		}
	}
}

// parseWithEnv parses a config with the environment a compose service
// gives it (defaults of ${NAME:-default} resolved).
func parseWithEnv(t *testing.T, path string, env map[string]string) *config.Config {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range env {
		t.Setenv(k, resolve(v))
	}
	cfg, diags := config.Parse(src, path)
	if diags.HasErrors() {
		t.Fatalf("%s does not load with the compose environment: %v", path, diags)
	}
	return cfg
}

// sameRules checks that cfg has config.example.hcl's events, written the
// same way, and its endpoints with the same filters and signing.
func sameRules(t *testing.T, cfg *config.Config) {
	t.Helper()
	exampleSrc, err := os.ReadFile("../../config.example.hcl")
	if err != nil {
		t.Fatal(err)
	}
	dockerSrc, _ := os.ReadFile(cfg.Filename)
	example := parseWithEnv(t, "../../config.example.hcl", map[string]string{
		"DATABASE_URL": "postgres://x@localhost/x", "WALHOOK_ADMIN_TOKEN": "t",
		"CRM_WEBHOOK_SECRET": "whsec_a8hywf/KD+qF3X4V/M4QiLKqmFobFia5O509lTqsF+s=", "LEGACY_SECRET": "s",
	})
	text := func(src []byte, e hcl.Expression) string {
		if e == nil {
			return ""
		}
		r := e.Range()
		return string(src[r.Start.Byte:r.End.Byte])
	}
	describe := func(src []byte, c *config.Config) []string {
		var out []string
		for _, ev := range c.Events {
			out = append(out, strings.Join([]string{ev.Name, ev.Description, ev.QualifiedTable(), strings.Join(ev.Ops, ","),
				text(src, ev.When), text(src, ev.Key), text(src, ev.Tenant), text(src, ev.Data)}, " | "))
		}
		for _, ep := range c.Endpoints {
			out = append(out, strings.Join([]string{ep.Name, strings.Join(ep.Events, ","), ep.Signing, ep.Ordering, text(src, ep.Body)}, " | "))
		}
		return out
	}
	want, got := describe(exampleSrc, example), describe(dockerSrc, cfg)
	if !slices.Equal(want, got) {
		t.Errorf("testenv/walhook.hcl's rules differ from config.example.hcl's:\n got %q\nwant %q", got, want)
	}
}
