package config

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Load reads, decodes and validates the config file at path. When the
// diagnostics hold an error the config is not usable (it may be nil).
func Load(path string) (*Config, hcl.Diagnostics) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot read config file",
			Detail:   fmt.Sprintf("reading %s: %v", path, err),
		}}
	}
	return Parse(src, path)
}

// Parse decodes and validates a config from src; filename names it in
// diagnostics. When the diagnostics hold an error the config is not usable
// (it may be nil).
func Parse(src []byte, filename string) (*Config, hcl.Diagnostics) {
	file, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, diags
	}
	var fb fileBlock
	ctx := &hcl.EvalContext{Functions: Functions()}
	diags = append(diags, gohcl.DecodeBody(file.Body, ctx, &fb)...)

	d := &decoder{diags: diags}
	cfg := &Config{Filename: filename}
	d.source(cfg, &fb.Source)
	d.state(cfg, fb.State)
	d.admin(cfg, fb.Admin)
	d.delivery(cfg, fb.Delivery)
	d.events(cfg, fb.Events)
	d.outboxEvents(cfg, fb.Source.Outbox)
	for _, e := range cfg.Events {
		if e.When != nil {
			e.WhenText = string(e.When.Range().SliceBytes(src))
		}
	}
	d.endpoints(cfg, fb.Endpoints)
	d.tables(cfg)
	return cfg, tidy(d.diags)
}

// tidy drops gohcl's "value must be known" echo of a failed function call
// and sorts the diagnostics by position, errors first on the same spot.
func tidy(diags hcl.Diagnostics) hcl.Diagnostics {
	out := diags[:0]
	for _, d := range diags {
		if d.Summary == "Unsuitable value type" && strings.Contains(d.Detail, "value must be known") {
			continue
		}
		out = append(out, d)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].Subject, out[j].Subject
		switch {
		case a == nil || b == nil:
			return a == nil && b != nil
		case a.Filename != b.Filename:
			return a.Filename < b.Filename
		}
		return a.Start.Byte < b.Start.Byte
	})
	return out
}

// decoder accumulates diagnostics while turning decoded blocks into a Config.
type decoder struct {
	diags hcl.Diagnostics
}

func (d *decoder) errorf(r hcl.Range, summary, format string, args ...any) {
	d.add(hcl.DiagError, r, summary, format, args...)
}

func (d *decoder) warnf(r hcl.Range, summary, format string, args ...any) {
	d.add(hcl.DiagWarning, r, summary, format, args...)
}

func (d *decoder) add(sev hcl.DiagnosticSeverity, r hcl.Range, summary, format string, args ...any) {
	diag := &hcl.Diagnostic{Severity: sev, Summary: summary, Detail: fmt.Sprintf(format, args...)}
	if r.Filename != "" {
		rr := r
		diag.Subject = &rr
	}
	d.diags = append(d.diags, diag)
}

// failed reports whether decoding r already produced an error (for example
// an env() call that failed), so a second complaint about it is noise.
func (d *decoder) failed(r hcl.Range) bool {
	for _, diag := range d.diags {
		s := diag.Subject
		if diag.Severity == hcl.DiagError && s != nil && s.Filename == r.Filename &&
			s.Start.Byte >= r.Start.Byte && s.End.Byte <= r.End.Byte {
			return true
		}
	}
	return false
}

// duration parses the duration attribute s written at r; ok is false when
// it is absent or wrong (wrong is reported).
func (d *decoder) duration(s string, r hcl.Range) (dur time.Duration, ok bool) {
	if !present(r) || d.failed(r) {
		return 0, false
	}
	v, err := ParseDuration(s)
	if err != nil {
		d.errorf(r, "Invalid duration", "%s", sentence(err))
		return 0, false
	}
	if v <= 0 {
		d.errorf(r, "Invalid duration", "The duration %q must be positive.", s)
		return 0, false
	}
	return v, true
}

// sentence turns an error into a diagnostic detail: capitalised, with a
// full stop.
func sentence(err error) string {
	s := err.Error()
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:] + "."
}
