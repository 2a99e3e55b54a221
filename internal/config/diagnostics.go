package config

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// WriteDiagnostics prints each diagnostic once: a "file:line:col: severity:
// summary" line, the source line it points at, and its detail, indented.
// sources maps file names to their contents; when nil (or missing a file)
// the files named by the diagnostics are read from disk.
func WriteDiagnostics(w io.Writer, sources map[string][]byte, diags hcl.Diagnostics) error {
	files := map[string][]byte{}
	for name, src := range sources {
		files[name] = src
	}
	var b strings.Builder
	for _, d := range diags {
		sev := "error"
		if d.Severity == hcl.DiagWarning {
			sev = "warning"
		}
		s := d.Subject
		if s == nil {
			fmt.Fprintf(&b, "%s: %s\n", sev, d.Summary)
		} else {
			fmt.Fprintf(&b, "%s:%d:%d: %s: %s\n", s.Filename, s.Start.Line, s.Start.Column, sev, d.Summary)
			if _, ok := files[s.Filename]; !ok && s.Filename != "" {
				files[s.Filename], _ = os.ReadFile(s.Filename)
			}
			if line, ok := sourceLine(files[s.Filename], s.Start.Line); ok {
				fmt.Fprintf(&b, "  %d: %s\n", s.Start.Line, line)
			}
		}
		if detail := strings.TrimSpace(d.Detail); detail != "" {
			for _, l := range strings.Split(detail, "\n") {
				fmt.Fprintf(&b, "  %s\n", l)
			}
		}
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("writing diagnostics: %w", err)
	}
	return nil
}

// sourceLine is line n (from 1) of src, without its line break.
func sourceLine(src []byte, n int) (string, bool) {
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for i := 1; sc.Scan(); i++ {
		if i == n {
			return strings.TrimRight(sc.Text(), " \t\r"), true
		}
	}
	return "", false
}
