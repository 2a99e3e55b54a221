package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// identifierRE is what slot, publication and state schema names must match:
// safe to use unquoted in SQL.
var identifierRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

func (d *decoder) source(cfg *Config, b *sourceBlock) {
	src := &cfg.Source
	src.URL, src.Slot, src.Publication, src.Mode = b.URL, b.Slot, b.Publication, Mode(b.Mode)
	if b.Kind != "" && b.Kind != "postgres" {
		d.errorf(b.KindRange, "Unsupported source", "The only source is \"postgres\", not %q.", b.Kind)
	}
	if present(b.URLRange) && !d.failed(b.URLRange) && strings.TrimSpace(b.URL) == "" {
		d.errorf(b.URLRange, "Missing source URL", "The source url is empty: give a libpq URL or key=value DSN for the database to read changes from.")
	}
	if src.Slot == "" {
		src.Slot = "walhook"
	} else if !identifierRE.MatchString(src.Slot) {
		d.errorf(b.SlotRange, "Invalid slot name", "A replication slot name uses lowercase letters, digits and underscores (at most 63), not %q.", src.Slot)
	}
	if src.Publication == "" {
		src.Publication = "walhook"
	} else if !identifierRE.MatchString(src.Publication) {
		d.errorf(b.PubRange, "Invalid publication name", "A publication name uses lowercase letters, digits and underscores (at most 63), not %q.", src.Publication)
	}
	switch src.Mode {
	case "":
		src.Mode = ModeLogical
	case ModeLogical, ModeOutbox:
	default:
		d.errorf(b.ModeRange, "Invalid source mode", "The mode is \"logical\" or \"outbox\", not %q.", src.Mode)
	}
	if v, ok := d.duration(b.StandbyRetry, b.StandbyRetryRange); ok {
		src.StandbyRetry = v
	}
	if src.Mode == ModeOutbox && b.Outbox == nil {
		d.errorf(b.ModeRange, "Missing outbox block", "Mode \"outbox\" needs an outbox block naming the outbox table: outbox { table = \"public.outbox\" }.")
	}
	if ob := b.Outbox; ob != nil {
		o := &Outbox{PollInterval: time.Second, BatchSize: 500, DeleteConsumed: ob.DeleteConsumed, TableRange: ob.TableRange}
		if present(ob.TableRange) && !d.failed(ob.TableRange) {
			schema, table, err := splitTable(ob.Table)
			if err != nil {
				d.errorf(ob.TableRange, "Invalid table name", "%s", sentence(err))
			}
			o.Table = schema + "." + table
		}
		if v, ok := d.duration(ob.PollInterval, ob.PollRange); ok {
			o.PollInterval = v
		}
		if ob.BatchSize != nil {
			if *ob.BatchSize < 1 {
				d.errorf(ob.BatchSizeRange, "Invalid batch size", "batch_size must be at least 1, not %d.", *ob.BatchSize)
			}
			o.BatchSize = *ob.BatchSize
		}
		src.Outbox = o
	}
}

func (d *decoder) state(cfg *Config, b *stateBlock) {
	cfg.State = State{Schema: "walhook", Retention: DefaultRetention}
	if b == nil {
		return
	}
	cfg.State.URL = b.URL
	if b.Retention != "" {
		if r, ok := d.duration(b.Retention, b.RetentionRange); ok {
			if r < time.Hour {
				d.errorf(b.RetentionRange, "Retention too short", "state.retention must be at least 1h (it is %s): the delivery log would lose rows still being read.", b.Retention)
			}
			cfg.State.Retention = r
		}
	}
	if b.Schema != "" {
		if !identifierRE.MatchString(b.Schema) {
			d.errorf(b.SchemaRange, "Invalid schema name", "The state schema uses lowercase letters, digits and underscores (at most 63), not %q.", b.Schema)
		}
		cfg.State.Schema = b.Schema
	}
}

func (d *decoder) admin(cfg *Config, b *adminBlock) {
	if b == nil {
		return
	}
	a := &Admin{Listen: "127.0.0.1:8080", AllowHTTP: b.AllowHTTP, SecretOverlap: 24 * time.Hour}
	if b.Listen != "" {
		if _, _, err := net.SplitHostPort(b.Listen); err != nil {
			d.errorf(b.ListenRange, "Invalid listen address", "listen is host:port (like \"127.0.0.1:8080\" or \":8080\"): %v.", err)
		}
		a.Listen = b.Listen
	}
	if b.Token != nil {
		a.Tokens = append(a.Tokens, *b.Token)
	}
	a.Tokens = append(a.Tokens, b.Tokens...)
	if d.failed(b.TokenRange) || d.failed(b.TokensRange) {
		// env() already said what is wrong.
	} else if len(a.Tokens) == 0 {
		d.errorf(b.DefRange, "Missing admin token", "The admin block needs token (or tokens = [...]): the bearer token that protects the admin API.")
	} else {
		for _, t := range a.Tokens {
			r := b.TokenRange
			if !present(r) {
				r = b.TokensRange
			}
			if strings.TrimSpace(t) == "" {
				d.errorf(r, "Empty admin token", "An admin token must not be empty.")
			} else if len(t) < 16 {
				d.warnf(r, "Short admin token", "An admin token of %d characters is easy to guess; use at least 16 random characters.", len(t))
			}
		}
	}
	a.AllowNetworks = d.networks(b.AllowNetworks, b.AllowNetworksRange)
	a.TrustedProxies = d.networks(b.TrustedProxies, b.TrustedRange)
	if v, ok := d.duration(b.SecretOverlap, b.SecretOverlapRange); ok {
		a.SecretOverlap = v
	}
	if present(b.PublicURLRange) && !d.failed(b.PublicURLRange) {
		origin, err := publicOrigin(b.PublicURL)
		if err != nil {
			d.errorf(b.PublicURLRange, "Invalid public_url", "public_url %q %s.", b.PublicURL, err)
		}
		a.PublicURL = origin
	}
	d.adminTLS(a, b)
	cfg.Admin = a
}

// adminTLS checks tls_cert and tls_key: both or neither, and a pair that
// loads.
func (d *decoder) adminTLS(a *Admin, b *adminBlock) {
	if d.failed(b.TLSCertRange) || d.failed(b.TLSKeyRange) {
		return
	}
	switch {
	case b.TLSCert == "" && b.TLSKey == "":
		return
	case b.TLSCert == "":
		d.errorf(b.TLSKeyRange, "Missing tls_cert", "tls_key needs tls_cert, the PEM certificate (chain) it belongs to.")
		return
	case b.TLSKey == "":
		d.errorf(b.TLSCertRange, "Missing tls_key", "tls_cert needs tls_key, the PEM private key of the certificate.")
		return
	}
	if _, err := tls.LoadX509KeyPair(b.TLSCert, b.TLSKey); err != nil {
		d.errorf(b.TLSCertRange, "Invalid TLS certificate", "The certificate %q and key %q do not load as a pair: %v.", b.TLSCert, b.TLSKey, err)
		return
	}
	a.TLSCert, a.TLSKey = b.TLSCert, b.TLSKey
}

// networks parses CIDR networks or single addresses.
func (d *decoder) networks(list []string, rng hcl.Range) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range list {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			if addr, aerr := netip.ParseAddr(s); aerr == nil {
				p, err = addr.Prefix(addr.BitLen())
			}
		}
		if err != nil {
			d.errorf(rng, "Invalid network", "%q is not a CIDR network like \"10.0.0.0/8\" or an IP address.", s)
			continue
		}
		out = append(out, p.Masked())
	}
	return out
}

// publicOrigin checks a public_url and returns its origin
// ("https://host[:port]"): http or https, a host, and no path, query or
// fragment beyond a trailing slash.
func publicOrigin(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("does not parse as a URL: %w", err)
	}
	if s := strings.ToLower(u.Scheme); s != "https" && s != "http" {
		return "", errors.New("must be an http:// or https:// URL")
	}
	if u.Host == "" {
		return "", errors.New("has no host")
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery || u.User != nil {
		return "", errors.New("is an origin only, scheme and host like \"https://hooks.example.com\": the console is always at /ui/")
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host), nil
}

func (d *decoder) delivery(cfg *Config, b *deliveryBlock) {
	cfg.Delivery = DefaultDelivery()
	if b == nil {
		return
	}
	dl := &cfg.Delivery
	if b.MaxInFlight != nil {
		if *b.MaxInFlight < 1 {
			d.errorf(b.MaxInFlightRange, "Invalid max_in_flight", "max_in_flight must be at least 1, not %d.", *b.MaxInFlight)
		}
		dl.MaxInFlight = *b.MaxInFlight
	}
	switch LogAttempts(b.LogAttempts) {
	case "":
	case LogFailures, LogAll:
		dl.LogAttempts = LogAttempts(b.LogAttempts)
	default:
		d.errorf(b.LogAttemptsRange, "Invalid log_attempts", "log_attempts is \"failures\" or \"all\", not %q.", b.LogAttempts)
	}
	switch Share(b.Share) {
	case "":
	case ShareOverflow, ShareAll:
		dl.Share = Share(b.Share)
	default:
		d.errorf(b.ShareRange, "Invalid share", "share is \"overflow\" (what memory cannot hold goes through the store) or \"all\" (every delivery goes through the store and every instance sends), not %q.", b.Share)
	}
	if b.RetryWorkers != nil {
		if *b.RetryWorkers < 1 {
			d.errorf(b.RetryWorkersRange, "Invalid retry_workers", "retry_workers must be at least 1, not %d.", *b.RetryWorkers)
		}
		dl.RetryWorkers = *b.RetryWorkers
	}
	if v, ok := d.duration(b.ShutdownTimeout, b.ShutdownTimeoutRange); ok {
		dl.ShutdownTimeout = v
	}
	if b.HTTP2 != nil {
		dl.HTTP2 = *b.HTTP2
	}
	if b.CAFile != "" {
		if pem, err := os.ReadFile(b.CAFile); err != nil {
			d.errorf(b.CAFileRange, "Invalid ca_file", "The CA file cannot be read: %v.", err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			d.errorf(b.CAFileRange, "Invalid ca_file", "%q holds no PEM certificate: give the certificate authorities that sign your HTTPS endpoints' certificates, PEM-encoded.", b.CAFile)
		}
		dl.CAFile = b.CAFile
	}
}

// splitTable splits "schema.table" or "table" (schema public).
func splitTable(s string) (schema, table string, err error) {
	schema, table, ok := strings.Cut(s, ".")
	if !ok {
		schema, table = "public", s
	}
	if schema == "" || table == "" || strings.Contains(table, ".") || strings.ContainsAny(s, " \t\"") {
		return "", "", fmt.Errorf("%q is not a table name: write \"table\" or \"schema.table\"", s)
	}
	return schema, table, nil
}

// tables fills Source.Tables: every table an event reads, plus the outbox
// table in logical mode, sorted and without duplicates.
func (d *decoder) tables(cfg *Config) {
	seen := map[string]bool{}
	for _, e := range cfg.Events {
		if e.Table != "" {
			seen[e.QualifiedTable()] = true
		}
	}
	if o := cfg.Source.Outbox; o != nil && o.Table != "" && cfg.Source.Mode == ModeLogical {
		seen[o.Table] = true
	}
	cfg.Source.Tables = make([]string, 0, len(seen))
	for t := range seen {
		cfg.Source.Tables = append(cfg.Source.Tables, t)
	}
	sort.Strings(cfg.Source.Tables)
}
