package outbox

import (
	"errors"
)

var errBadRecord = errors.New("malformed row text")

// parseRecord splits a row's text output, "(f1,f2,...)", into its fields:
// nil for NULL (an empty unquoted field), the unquoted bytes otherwise.
// Quoted fields undo record_out's quoting ("" and \ escapes).
func parseRecord(s string) ([][]byte, error) {
	if len(s) < 2 || s[0] != '(' || s[len(s)-1] != ')' {
		return nil, errBadRecord
	}
	var fields [][]byte
	i, end := 1, len(s)-1
	for {
		var field []byte
		switch {
		case i < end && s[i] == '"':
			field = []byte{}
			i++
			for {
				if i >= end {
					return nil, errBadRecord
				}
				c := s[i]
				switch {
				case c == '"' && i+1 < end && s[i+1] == '"':
					field = append(field, '"')
					i += 2
				case c == '"':
					i++
					goto done
				case c == '\\' && i+1 < end:
					field = append(field, s[i+1])
					i += 2
				default:
					field = append(field, c)
					i++
				}
			}
		done:
			if i < end && s[i] != ',' {
				return nil, errBadRecord
			}
		default:
			start := i
			for i < end && s[i] != ',' {
				i++
			}
			if i > start {
				field = []byte(s[start:i])
			}
		}
		fields = append(fields, field)
		if i >= end {
			return fields, nil
		}
		i++ // the comma
	}
}
