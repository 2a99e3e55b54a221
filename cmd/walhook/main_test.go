package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/walhook/walhook/testenv"
)

func TestMain(m *testing.M) {
	testenv.Main(m, func() {
		if binDir != "" {
			os.RemoveAll(binDir)
		}
	})
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

// binary builds the walhook command once per test run and returns its path.
func binary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "walhook-bin-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "walhook")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = err
			t.Logf("go build: %s", out)
		}
	})
	if binErr != nil {
		t.Fatalf("building walhook: %v", binErr)
	}
	return binPath
}

// testApp is an app writing to stdout and stderr, with an empty stdin
// that is not a terminal.
func testApp(stdout, stderr io.Writer) *app {
	return &app{stdin: strings.NewReader(""), stdout: stdout, stderr: stderr}
}

// walhook runs the command line args in this process and returns the
// exit status, stdout and stderr.
func walhook(ctx context.Context, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := execute(ctx, args, testApp(&out, &errOut))
	return code, out.String(), errOut.String()
}
