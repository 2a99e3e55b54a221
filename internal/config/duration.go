package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseDuration parses a Go duration ("90s", "1h30m") that may also use "d"
// for days of 24 hours ("5d", "1d12h", "1.5d").
func ParseDuration(s string) (time.Duration, error) {
	if !strings.Contains(s, "d") {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q: use a number and a unit (ms, s, m, h, d), like \"30s\" or \"5d\"", s)
		}
		return d, nil
	}
	// Rewrite each "<number>d" as hours, then let time.ParseDuration do the rest.
	var b strings.Builder
	i := 0
	for i < len(s) {
		j := i
		for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.') {
			j++
		}
		if j > i && j < len(s) && s[j] == 'd' {
			days, err := strconv.ParseFloat(s[i:j], 64)
			if err != nil {
				return 0, fmt.Errorf("invalid duration %q: bad number of days %q", s, s[i:j])
			}
			b.WriteString(strconv.FormatFloat(days*24, 'f', -1, 64))
			b.WriteByte('h')
			i = j + 1
			continue
		}
		if j == i {
			j++
		}
		b.WriteString(s[i:j])
		i = j
	}
	d, err := time.ParseDuration(b.String())
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: use a number and a unit (ms, s, m, h, d), like \"30s\" or \"5d\"", s)
	}
	return d, nil
}
