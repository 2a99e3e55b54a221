package netguard

import (
	"net/netip"
)

// rule is one refused network and why.
type rule struct {
	prefix netip.Prefix
	reason string
}

// rules are checked in order; narrower entries come first so the reason
// names the most specific rule.
var rules = func() []rule {
	list := []struct{ cidr, reason string }{
		{"169.254.169.254/32", "cloud metadata address"},
		{"fd00:ec2::254/128", "cloud metadata address"},
		{"0.0.0.0/8", "unspecified (\"this network\") address"},
		{"::/128", "unspecified address"},
		{"127.0.0.0/8", "loopback address"},
		{"::1/128", "loopback address"},
		{"10.0.0.0/8", "private address"},
		{"172.16.0.0/12", "private address"},
		{"192.168.0.0/16", "private address"},
		{"fc00::/7", "private (unique local) address"},
		{"100.64.0.0/10", "shared (CGNAT) address"},
		{"169.254.0.0/16", "link-local address"},
		{"fe80::/10", "link-local address"},
		{"fec0::/10", "site-local address"},
		{"224.0.0.0/4", "multicast address"},
		{"ff00::/8", "multicast address"},
		{"255.255.255.255/32", "broadcast address"},
		{"240.0.0.0/4", "reserved address"},
		{"192.0.0.0/24", "IETF protocol assignment address"},
		{"198.18.0.0/15", "benchmarking address"},
		{"192.0.2.0/24", "documentation address"},
		{"198.51.100.0/24", "documentation address"},
		{"203.0.113.0/24", "documentation address"},
		{"2001:db8::/32", "documentation address"},
		{"100::/64", "discard-only address"},
		{"64:ff9b:1::/48", "local-use NAT64 address"},
	}
	rs := make([]rule, len(list))
	for i, r := range list {
		rs[i] = rule{netip.MustParsePrefix(r.cidr), r.reason}
	}
	return rs
}()

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// Blocked reports whether ip is in a network webhooks to API-registered
// endpoints may not reach, and which rule matched, e.g.
// "private address (10.0.0.0/8)". IPv4 addresses embedded in IPv6
// (IPv4-mapped, NAT64 64:ff9b::/96, 6to4 2002::/16) are judged by their
// IPv4 address.
func Blocked(ip netip.Addr) (reason string, blocked bool) {
	if !ip.IsValid() {
		return "invalid address", true
	}
	ip = ip.WithZone("").Unmap()
	if ip.Is6() {
		b := ip.As16()
		switch {
		case nat64.Contains(ip):
			return embedded(netip.AddrFrom4([4]byte(b[12:16])), "NAT64")
		case sixToFour.Contains(ip):
			return embedded(netip.AddrFrom4([4]byte(b[2:6])), "6to4")
		}
	}
	for _, r := range rules {
		if r.prefix.Contains(ip) {
			return r.reason + " (" + r.prefix.String() + ")", true
		}
	}
	return "", false
}

// embedded judges the IPv4 address carried inside an IPv6 one.
func embedded(v4 netip.Addr, how string) (string, bool) {
	reason, blocked := Blocked(v4)
	if !blocked {
		return "", false
	}
	return how + " form of " + v4.String() + ", a " + reason, true
}
