package receiver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/walhook/walhook/internal/termstyle"
)

// maxPayload caps the payload shown per request, in runes.
const maxPayload = 200

// print writes rec to Options.Out as two lines: a summary, then the
// payload as compact JSON.
func (r *Receiver) print(rec Received) {
	if r.opts.Out == nil {
		return
	}
	r.outMu.Lock()
	defer r.outMu.Unlock()
	fmt.Fprint(r.opts.Out, Format(rec, r.opts.Color))
}

// Format renders rec as printed by a Receiver: time, event type, id,
// attempt, signature check and status, then the payload indented.
func Format(rec Received, color bool) string {
	style := func(code, s string) string { return termstyle.Apply(color, code, s) }
	var b strings.Builder
	b.WriteString(style(termstyle.Dim, rec.At.Format("15:04:05.000")))
	b.WriteString("  ")
	b.WriteString(style(termstyle.Bold+termstyle.Cyan, orDash(rec.Type)))
	b.WriteString("  ")
	b.WriteString(orDash(rec.ID))
	if rec.Attempt > 0 {
		fmt.Fprintf(&b, "  attempt %d", rec.Attempt)
	}
	b.WriteString("  ")
	switch {
	case rec.Verified:
		b.WriteString(style(termstyle.Green, "signature verified ✓"))
	case rec.VerifyErr != nil:
		b.WriteString(style(termstyle.Red, "✗ "+rec.VerifyErr.Error()))
	default:
		b.WriteString(style(termstyle.Dim, "signature not checked (no secret)"))
	}
	status := fmt.Sprintf("→ %d", rec.Status)
	if rec.Status >= 300 {
		status = style(termstyle.Red, status)
	}
	b.WriteString("  ")
	b.WriteString(status)
	b.WriteString("\n  ")
	b.WriteString(style(termstyle.Dim, payload(rec.Body)))
	b.WriteString("\n")
	return b.String()
}

// payload is body as one line of compact JSON, or quoted if not JSON,
// cut at maxPayload runes.
func payload(body []byte) string {
	var s string
	var buf bytes.Buffer
	if json.Compact(&buf, body) == nil {
		s = buf.String()
	} else {
		s = fmt.Sprintf("%q", body[:min(len(body), 4*maxPayload)])
	}
	if utf8.RuneCountInString(s) <= maxPayload {
		return s
	}
	n := 0
	for i := range s {
		if n == maxPayload {
			return s[:i] + "…"
		}
		n++
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
