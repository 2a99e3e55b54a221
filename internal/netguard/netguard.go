// Package netguard keeps webhooks registered through the API from reaching
// networks they have no business reaching (SSRF): loopback, private,
// link-local, CGNAT and cloud-metadata addresses among others.
//
// The address is checked when the connection is made, after DNS
// resolution, in the dialer's Control hook: a hostname that resolves to a
// public address when registered and to 127.0.0.1 when dialled (DNS
// rebinding) is still refused, and a refused address never sees a packet.
// Endpoints from the HCL config are operator-trusted and not guarded.
package netguard

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
)

// Guard decides which addresses and URLs API-registered endpoints may use.
// The zero Guard refuses every blocked network and plain http; a nil
// *Guard allows everything.
type Guard struct {
	// Allow lists networks reachable despite Blocked (admin.allow_networks).
	Allow []netip.Prefix
	// AllowHTTP permits http:// URLs (admin.allow_http); their connections
	// must still go to an address inside Allow, so plain http never
	// leaves the networks the operator listed.
	AllowHTTP bool
}

// RefusedError is a connection or URL refused by a Guard.
type RefusedError struct {
	Addr   netip.Addr // the refused address; invalid when the URL was refused
	Reason string     // which rule refused, e.g. "private address (10.0.0.0/8)"
	Hint   string     // how to allow it
}

func (e *RefusedError) Error() string {
	if e.Addr.IsValid() {
		return fmt.Sprintf("refusing to connect to %s: %s; %s", e.Addr, e.Reason, e.Hint)
	}
	return fmt.Sprintf("refusing url: %s; %s", e.Reason, e.Hint)
}

const (
	hintNetworks = "to allow it, add its network to admin.allow_networks"
	hintHTTP     = "use https, or set admin.allow_http and list the receiver's network in admin.allow_networks"
)

// allowed reports whether ip is inside one of g.Allow.
func (g *Guard) allowed(ip netip.Addr) bool {
	ip = ip.WithZone("")
	for _, p := range g.Allow {
		if p.Contains(ip) || p.Contains(ip.Unmap()) {
			return true
		}
	}
	return false
}

// CheckAddr returns a *RefusedError if connections to ip are refused:
// plaintext connections (http://) must go inside Allow, others anywhere
// but a Blocked network unless inside Allow.
func (g *Guard) CheckAddr(ip netip.Addr, plaintext bool) error {
	if g == nil || g.allowed(ip) {
		return nil
	}
	if reason, blocked := Blocked(ip); blocked {
		return &RefusedError{Addr: ip, Reason: reason, Hint: hintNetworks}
	}
	if plaintext {
		return &RefusedError{Addr: ip, Reason: "plain http outside admin.allow_networks", Hint: hintHTTP}
	}
	return nil
}

// CheckURL checks an endpoint URL when it is registered: https (or http
// when AllowHTTP), a host, and for a literal IP address the same rules as
// at connect time. A hostname passes here; its addresses are checked when
// connecting (see Control).
func (g *Guard) CheckURL(raw string) error {
	if g == nil {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("parsing endpoint url: %w", err)
	}
	var plaintext bool
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		if !g.AllowHTTP {
			return &RefusedError{Reason: "plain http", Hint: hintHTTP}
		}
		plaintext = true
	default:
		return fmt.Errorf("endpoint url %q: scheme must be https", u.Redacted())
	}
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("endpoint url %q: no host", u.Redacted())
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return g.CheckAddr(ip, plaintext)
	}
	return nil
}

// Control is a net.Dialer Control hook for https connections: it refuses
// a resolved address in a Blocked network unless it is inside Allow. It
// runs before the connection is attempted.
func (g *Guard) Control(network, address string, _ syscall.RawConn) error {
	return g.checkDial(address, false)
}

// PlaintextControl is the net.Dialer Control hook for http connections:
// it refuses every address outside Allow.
func (g *Guard) PlaintextControl(network, address string, _ syscall.RawConn) error {
	return g.checkDial(address, true)
}

func (g *Guard) checkDial(address string, plaintext bool) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("checking dial address %q: %w", address, err)
	}
	return g.CheckAddr(ap.Addr(), plaintext)
}
