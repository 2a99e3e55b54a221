package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

func init() {
	register(command{name: "webhooks", summary: "list, create, delete or test API-registered webhooks (through the admin API)", run: runWebhooks})
}

func runWebhooks(args []string) int {
	return webhooks(context.Background(), args, os.Stdout, os.Stderr)
}

const webhooksUsage = `Usage:
  walhook webhooks list   [--tenant T] [--json]
  walhook webhooks create --url URL --events a,b [--description D] [--tenant T] [--signing S] [--secret S] [--header K=V]... [--inactive]
  walhook webhooks delete ID
  walhook webhooks test   ID

Every command talks to a running walhook's admin API:
  --api URL     default http://<admin.listen> from -c FILE (walhook.hcl)
  --token T     default $WALHOOK_ADMIN_TOKEN, else admin.token from -c FILE
`

// parseInterspersed parses flags that may come before or after the
// positional arguments ("test ep_x --api URL"), returning the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// headerFlags collects repeated --header K=V flags.
type headerFlags map[string]string

func (h headerFlags) String() string { return "" }

func (h headerFlags) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("want Name=value, got %q", v)
	}
	h[strings.TrimSpace(k)] = val
	return nil
}

// webhooks runs `walhook webhooks list|create|delete|test`.
func webhooks(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stderr, webhooksUsage)
		return 2
	}
	sub := args[0]
	switch sub {
	case "list", "create", "delete", "test":
	default:
		fmt.Fprintf(stderr, "walhook: unknown webhooks command %q\n\n%s", sub, webhooksUsage)
		return 2
	}
	fs := flag.NewFlagSet("webhooks "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("c", "walhook.hcl", "config file (for the API address and token)")
	api := fs.String("api", "", "admin API base URL")
	token := fs.String("token", "", "admin API bearer token")
	asJSON := fs.Bool("json", false, "print the API's JSON")
	tenant := fs.String("tenant", "", "tenant")
	hookURL := fs.String("url", "", "endpoint URL (https)")
	events := fs.String("events", "", "comma-separated event names or globs")
	description := fs.String("description", "", "description")
	signingScheme := fs.String("signing", "", "standard-webhooks (default), hmac-sha256, stripe or github")
	secret := fs.String("secret", "", "signing secret; generated when empty")
	inactive := fs.Bool("inactive", false, "create the webhook inactive")
	headers := headerFlags{}
	fs.Var(headers, "header", "extra request header Name=value (repeatable)")
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return 2
	}
	if (sub == "delete" || sub == "test") && len(pos) != 1 {
		fmt.Fprintf(stderr, "walhook: webhooks %s needs one webhook id\n", sub)
		return 2
	}
	c, err := newAPIClient(*cfgPath, *api, *token)
	if err != nil {
		fmt.Fprintf(stderr, "walhook: %v\n", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()

	var out json.RawMessage
	switch sub {
	case "list":
		code := listWebhooks(ctx, c, *tenant, *asJSON, stdout, stderr)
		return code
	case "create":
		body := map[string]any{"url": *hookURL, "events": splitList(*events), "description": *description,
			"tenant": *tenant, "signing": *signingScheme, "active": !*inactive}
		if *secret != "" {
			body["secret"] = *secret
		}
		if len(headers) > 0 {
			body["headers"] = map[string]string(headers)
		}
		err = c.do(ctx, "POST", "/v1/webhooks", body, &out)
	case "delete":
		err = c.do(ctx, "DELETE", "/v1/webhooks/"+url.PathEscape(pos[0]), nil, nil)
	case "test":
		err = c.do(ctx, "POST", "/v1/webhooks/"+url.PathEscape(pos[0])+"/test", nil, &out)
	}
	if err != nil {
		fmt.Fprintf(stderr, "walhook: %v\n", err)
		return 1
	}
	switch {
	case sub == "delete":
		fmt.Fprintf(stdout, "deleted %s\n", pos[0])
	case *asJSON:
		fmt.Fprintf(stdout, "%s\n", bytes.TrimSpace(out))
	case sub == "create":
		var h struct{ ID, URL, Secret string }
		_ = json.Unmarshal(out, &h)
		fmt.Fprintf(stdout, "created %s for %s\nsecret: %s\n(the secret is shown only now; store it with the receiver)\n", h.ID, h.URL, h.Secret)
	case sub == "test":
		var a struct {
			OK         bool    `json:"ok"`
			StatusCode int     `json:"status_code"`
			DurationMS float64 `json:"duration_ms"`
			Error      string  `json:"error"`
			Response   string  `json:"response"`
		}
		_ = json.Unmarshal(out, &a)
		result := "delivered"
		if !a.OK {
			result = "failed: " + a.Error
		}
		fmt.Fprintf(stdout, "%s (status %d, %.0f ms)\n", result, a.StatusCode, a.DurationMS)
		if a.Response != "" {
			fmt.Fprintf(stdout, "response: %s\n", a.Response)
		}
		if !a.OK {
			return 1
		}
	}
	return 0
}

func listWebhooks(ctx context.Context, c *apiClient, tenant string, asJSON bool, stdout, stderr io.Writer) int {
	type hook struct {
		ID     string   `json:"id"`
		Source string   `json:"source"`
		URL    string   `json:"url"`
		Events []string `json:"events"`
		Tenant string   `json:"tenant"`
		Active bool     `json:"active"`
		Health struct {
			Disabled bool `json:"disabled"`
		} `json:"health"`
	}
	var all []json.RawMessage
	cursor := ""
	for {
		q := url.Values{"limit": {"1000"}}
		if tenant != "" {
			q.Set("tenant", tenant)
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page struct {
			Data       []json.RawMessage `json:"data"`
			NextCursor string            `json:"next_cursor"`
		}
		if err := c.do(ctx, "GET", "/v1/webhooks?"+q.Encode(), nil, &page); err != nil {
			fmt.Fprintf(stderr, "walhook: %v\n", err)
			return 1
		}
		all = append(all, page.Data...)
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if asJSON {
		for _, raw := range all {
			fmt.Fprintf(stdout, "%s\n", raw)
		}
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSOURCE\tSTATE\tTENANT\tEVENTS\tURL")
	for _, raw := range all {
		var h hook
		_ = json.Unmarshal(raw, &h)
		state := "active"
		switch {
		case h.Health.Disabled:
			state = "disabled"
		case !h.Active:
			state = "inactive"
		}
		t := h.Tenant
		if t == "" {
			t = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", h.ID, h.Source, state, t, strings.Join(h.Events, ","), h.URL)
	}
	tw.Flush()
	return 0
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// apiClient calls a running walhook's admin API.
type apiClient struct {
	base, token string
	http        *http.Client
}

// newAPIClient resolves the API address and token: flags first, then
// $WALHOOK_ADMIN_TOKEN, then the config's admin block.
func newAPIClient(cfgPath, api, token string) (*apiClient, error) {
	if token == "" {
		token = os.Getenv("WALHOOK_ADMIN_TOKEN")
	}
	if api == "" || token == "" {
		cfg, ok := loadConfig(cfgPath)
		if !ok {
			return nil, fmt.Errorf("pass --api and --token, or a valid config with -c")
		}
		if cfg.Admin == nil {
			return nil, fmt.Errorf("%s has no admin block: the admin API is not served; pass --api and --token for another walhook", cfgPath)
		}
		if api == "" {
			api = "http://" + dialable(cfg.Admin.Listen)
		}
		if token == "" && len(cfg.Admin.Tokens) > 0 {
			token = cfg.Admin.Tokens[0]
		}
	}
	if token == "" {
		return nil, fmt.Errorf("no admin token: pass --token or set WALHOOK_ADMIN_TOKEN")
	}
	return &apiClient{base: strings.TrimRight(api, "/"), token: token, http: &http.Client{Timeout: 30 * time.Second}}, nil
}

// dialable turns a listen address into one to connect to: an empty or
// unspecified host becomes loopback.
func dialable(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}

// do sends a request and decodes a 2xx answer into out (if not nil); an
// error answer becomes an error with the API's code and message.
func (c *apiClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("building the request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("calling the admin API at %s (is walhook running?): %w", c.base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("reading the admin API's answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error.Message != "" {
			return fmt.Errorf("%s %s: %d %s: %s", method, strings.SplitN(path, "?", 2)[0], resp.StatusCode, e.Error.Code, e.Error.Message)
		}
		return fmt.Errorf("%s %s: status %d", method, path, resp.StatusCode)
	}
	if out != nil && len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("decoding the admin API's answer: %w", err)
		}
	}
	return nil
}
