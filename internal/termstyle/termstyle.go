// Package termstyle colours text for a terminal with ANSI escape codes,
// as `walhook listen` and `walhook demo` print it.
package termstyle

// ANSI styles; combine them by concatenation (Bold+Cyan).
const (
	Reset  = "\x1b[0m"
	Dim    = "\x1b[2m"
	Bold   = "\x1b[1m"
	Green  = "\x1b[32m"
	Red    = "\x1b[31m"
	Cyan   = "\x1b[36m"
	Yellow = "\x1b[33m"
)

// Apply returns s in style when on, else s unchanged.
func Apply(on bool, style, s string) string {
	if !on {
		return s
	}
	return style + s + Reset
}
