package admin

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ErrForeignOrigin refuses a state-changing browser request whose Origin
// is not the console's own; it is answered 403 and says so.
var ErrForeignOrigin = errors.New("a request from another origin is refused")

// Frontend is how clients reach the admin listener: directly, or through
// a TLS-terminating reverse proxy (docs/console.md, "Behind a proxy").
// The zero Frontend (and a nil one) trusts no forwarded header.
type Frontend struct {
	// PublicURL is the origin browsers use, "https://hooks.example.com";
	// empty: the request's own (as forwarded by a trusted proxy).
	PublicURL string
	// TrustedProxies are the addresses whose X-Forwarded-Proto,
	// X-Forwarded-Host and X-Forwarded-For are believed.
	TrustedProxies []netip.Prefix
}

// remoteIP is the address the request came from, without port.
func remoteIP(r *http.Request) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	return a.Unmap(), err == nil
}

func (f *Frontend) trustedAddr(a netip.Addr) bool {
	if f == nil {
		return false
	}
	for _, p := range f.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// viaTrustedProxy reports whether r came from a trusted proxy.
func (f *Frontend) viaTrustedProxy(r *http.Request) bool {
	a, ok := remoteIP(r)
	return ok && f.trustedAddr(a)
}

// firstValue is the first entry of a comma-separated header: the one the
// proxy nearest to the client wrote.
func firstValue(h http.Header, name string) string {
	v, _, _ := strings.Cut(h.Get(name), ",")
	return strings.TrimSpace(v)
}

// Origin is the origin a browser shows for r: PublicURL when set, else
// the scheme and host forwarded by a trusted proxy, else r's own.
func (f *Frontend) Origin(r *http.Request) string {
	if f != nil && f.PublicURL != "" {
		return f.PublicURL
	}
	scheme, host := "http", r.Host
	if r.TLS != nil {
		scheme = "https"
	}
	if f.viaTrustedProxy(r) {
		if p := strings.ToLower(firstValue(r.Header, "X-Forwarded-Proto")); p == "http" || p == "https" {
			scheme = p
		}
		if h := firstValue(r.Header, "X-Forwarded-Host"); h != "" {
			host = h
		}
	}
	return scheme + "://" + strings.ToLower(host)
}

// Secure reports whether browsers reach r over TLS: the session cookie is
// then Secure.
func (f *Frontend) Secure(r *http.Request) bool {
	return strings.HasPrefix(f.Origin(r), "https://")
}

// CheckOrigin refuses a browser Origin other than the console's own; a
// request without Origin (curl, older browsers on same-origin GETs)
// passes.
func (f *Frontend) CheckOrigin(r *http.Request) error {
	o := r.Header.Get("Origin")
	if o == "" {
		return nil
	}
	if want := f.Origin(r); !strings.EqualFold(o, want) {
		return fmt.Errorf("%w: %s is not this console's origin %s (behind a proxy, set admin.public_url or admin.trusted_proxies)", ErrForeignOrigin, o, want)
	}
	return nil
}

// ClientAddr is the client's IP: the peer's, or behind trusted proxies the
// nearest address in X-Forwarded-For that is not a trusted proxy.
func (f *Frontend) ClientAddr(r *http.Request) string {
	a, ok := remoteIP(r)
	if !ok {
		return r.RemoteAddr
	}
	if !f.trustedAddr(a) {
		return a.String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		h, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		a = h.Unmap()
		if !f.trustedAddr(a) {
			break
		}
	}
	return a.String()
}
