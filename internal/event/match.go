package event

import "path"

// MatchAny reports whether eventType matches any of the filters: an exact
// name, a glob where * spans one or more dot-separated segments' characters
// (path.Match over the name with "." kept literal), or "*".
func MatchAny(filters []string, eventType string) bool {
	for _, f := range filters {
		if f == "*" || f == eventType {
			return true
		}
		if ok, _ := path.Match(f, eventType); ok {
			return true
		}
	}
	return false
}
