package config

import (
	"fmt"
	"io"
	"os"

	"github.com/hashicorp/hcl/v2"
)

// WriteDiagnostics prints each diagnostic as a "file:line:col: severity:
// summary" line followed by HCL's text rendering with the source snippet.
// sources maps file names to their contents; when nil (or missing a file)
// the files named by the diagnostics are read from disk.
func WriteDiagnostics(w io.Writer, sources map[string][]byte, diags hcl.Diagnostics) error {
	files := map[string]*hcl.File{}
	for name, src := range sources {
		files[name] = &hcl.File{Bytes: src}
	}
	for _, d := range diags {
		if d.Subject == nil {
			continue
		}
		name := d.Subject.Filename
		if _, ok := files[name]; ok || name == "" {
			continue
		}
		if src, err := os.ReadFile(name); err == nil {
			files[name] = &hcl.File{Bytes: src}
		}
	}
	tw := hcl.NewDiagnosticTextWriter(w, files, 0, false)
	for _, d := range diags {
		sev := "error"
		if d.Severity == hcl.DiagWarning {
			sev = "warning"
		}
		var err error
		if d.Subject != nil {
			s := d.Subject
			_, err = fmt.Fprintf(w, "%s:%d:%d: %s: %s\n", s.Filename, s.Start.Line, s.Start.Column, sev, d.Summary)
		} else {
			_, err = fmt.Fprintf(w, "%s: %s\n", sev, d.Summary)
		}
		if err != nil {
			return fmt.Errorf("writing diagnostics: %w", err)
		}
		if err := tw.WriteDiagnostic(d); err != nil {
			return fmt.Errorf("writing diagnostics: %w", err)
		}
	}
	return nil
}
