// Package version holds walhook's version, sent in the User-Agent header.
package version

// Version is walhook's release version; builds may override it with
// -ldflags "-X github.com/walhook/walhook/internal/version.Version=...".
var Version = "0.1.0-dev"

// UserAgent is the User-Agent header walhook sends with every webhook.
func UserAgent() string { return "walhook/" + Version + " (+https://github.com/walhook/walhook)" }
