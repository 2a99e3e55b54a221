package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/walhook/walhook/internal/testkit"
	"github.com/walhook/walhook/testenv"
)

// demoRun is `walhook demo` running as a subprocess, its output read
// line by line.
type demoRun struct {
	cmd    *exec.Cmd
	lines  chan string
	mu     sync.Mutex
	output strings.Builder
	stderr testkit.Buffer
}

// startDemo runs the built binary's demo from the repository root, with a
// throwaway cluster (or the test server of WALHOOK_TEST_DATABASE_URL).
func startDemo(t *testing.T, args ...string) *demoRun {
	t.Helper()
	args = append([]string{"demo", "--color", "never"}, args...)
	if url := os.Getenv(testenv.EnvURL); url != "" {
		args = append(args, "--database-url", url)
	}
	cmd := exec.Command(binary(t), args...)
	cmd.Dir = filepath.Join("..", "..")
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DATABASE_URL=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "DATABASE_URL=")
	d := &demoRun{cmd: cmd, lines: make(chan string, 1024)}
	cmd.Stderr = &d.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting walhook demo: %v", err)
	}
	go func() {
		defer close(d.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			d.mu.Lock()
			d.output.WriteString(sc.Text() + "\n")
			d.mu.Unlock()
			d.lines <- sc.Text()
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return d
}

// waitLine returns the first line from now on that matches re, failing
// the test if the demo ends or the deadline passes first.
func (d *demoRun) waitLine(t *testing.T, re *regexp.Regexp, deadline <-chan time.Time) []string {
	t.Helper()
	for {
		select {
		case line, ok := <-d.lines:
			if !ok {
				t.Fatalf("demo output ended before a line matching %s\n%s\nstderr:\n%s", re, d.out(), d.stderr.String())
			}
			if m := re.FindStringSubmatch(line); m != nil {
				return m
			}
		case <-deadline:
			t.Fatalf("no line matching %s within the deadline\n%s\nstderr:\n%s", re, d.out(), d.stderr.String())
		}
	}
}

func (d *demoRun) out() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.output.String()
}

// interrupt sends SIGINT and expects a clean exit 0.
func (d *demoRun) interrupt(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatalf("sending SIGINT: %v", err)
	}
	for range d.lines { // drain until stdout closes
	}
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo exited with %v after SIGINT\n%s\nstderr:\n%s", err, d.out(), d.stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("demo did not exit within 60s of SIGINT\n%s", d.out())
	}
}

var (
	clusterLine  = regexp.MustCompile(`throwaway cluster in (\S+) \(port`)
	verifiedLine = regexp.MustCompile(`^\s+\S+\s+(\S+)\s+→ (\S+)\s+attempt (\d+)\s+signature verified ✓\s+→ 204`)
)

// checkNoCluster checks that the demo's cluster is gone: its directory
// removed and no process naming it.
func checkNoCluster(t *testing.T, dir string) {
	t.Helper()
	if dir == "" {
		return // an external server
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the demo's cluster directory %s is still there (%v)", dir, err)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		cmdline, err := os.ReadFile(p)
		if err == nil && bytes.Contains(cmdline, []byte(dir)) {
			t.Errorf("a process of the demo's cluster is still running: %s: %s", p, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
		}
	}
}

// TestDemoInterrupted runs `walhook demo`, waits for its first verified
// deliveries and interrupts it mid-story: it must exit 0 and leave no
// Postgres behind.
func TestDemoInterrupted(t *testing.T) {
	t.Parallel()
	d := startDemo(t)
	deadline := time.After(60 * time.Second)
	var dir string
	if os.Getenv(testenv.EnvURL) == "" {
		dir = d.waitLine(t, clusterLine, deadline)[1]
	}
	m := d.waitLine(t, verifiedLine, deadline)
	if m[1] != "contact.created" {
		t.Errorf("first delivery is %s, want contact.created", m[1])
	}
	d.interrupt(t)
	checkNoCluster(t, dir)
}

// TestDemoStory runs the whole story with --keep: every delivery verified,
// the failing endpoint recovered after two retries, nothing failed; then
// it keeps running until SIGINT.
func TestDemoStory(t *testing.T) {
	t.Parallel()
	d := startDemo(t, "--keep")
	deadline := time.After(60 * time.Second)
	var dir string
	if os.Getenv(testenv.EnvURL) == "" {
		dir = d.waitLine(t, clusterLine, deadline)[1]
	}
	done := d.waitLine(t, regexp.MustCompile(`^Story done in \S+: (\d+) events, (\d+) deliveries verified and accepted, (\d+) retries, (\d+) failed`), deadline)
	if done[1] != "8" || done[2] != "14" || done[3] != "2" || done[4] != "0" {
		t.Errorf("summary: %s", done[0])
	}
	d.waitLine(t, regexp.MustCompile(`^\s+psql '.*'$`), deadline)
	out := d.out()
	for _, want := range []string{
		"deal.stage.changed  → crm      attempt 3  signature verified ✓  → 204",
		"invoice.paid        → legacy   attempt 1  signature verified ✓  → 204",
		"X-Webhook-Signature: ", // the hmac-sha256 endpoint's request in full
		"Webhook-Signature: v1,",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if strings.Contains(out, "✗") {
		t.Errorf("a signature did not verify:\n%s", out)
	}
	d.interrupt(t)
	checkNoCluster(t, dir)
}
