package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func init() { register(newWebhooksCommand) }

// webhooksNote ends the help of every webhooks command.
const webhooksNote = `Every webhooks command talks to a running walhook's admin API:
  --api URL     default http://<admin.listen> from -c FILE (walhook.hcl)
  --token T     default $WALHOOK_ADMIN_TOKEN, else admin.token from -c FILE`

// apiFlags are the flags naming the admin API, shared by the webhooks
// commands.
type apiFlags struct{ api, token string }

func newWebhooksCommand(a *app) *cobra.Command {
	var af apiFlags
	g := newGroup("webhooks", "List, create, delete or test API-registered webhooks (through the admin API)",
		`  walhook webhooks list -c walhook.hcl
  walhook webhooks create --url https://crm.example.com/hooks --events 'deal.*' --tenant acme
  walhook webhooks test ep_2b7c --api http://127.0.0.1:8080 --token "$WALHOOK_ADMIN_TOKEN"`,
		newWebhooksListCommand(a, &af), newWebhooksCreateCommand(a, &af),
		newWebhooksDeleteCommand(a, &af), newWebhooksTestCommand(a, &af))
	g.PersistentFlags().StringVar(&af.api, "api", "", "admin API base URL (default http://<admin.listen> of the config)")
	g.PersistentFlags().StringVar(&af.token, "token", "", "admin API bearer token (default $WALHOOK_ADMIN_TOKEN, then admin.token)")
	return g
}

func newWebhooksListCommand(a *app, af *apiFlags) *cobra.Command {
	var tenant string
	var asJSON bool
	cmd := &cobra.Command{
		Use:         "list",
		Short:       "List the webhooks (config and API ones)",
		Long:        "Lists every webhook, config and API-registered, with its state.\n\n" + webhooksNote,
		Example:     "  walhook webhooks list -c walhook.hcl\n  walhook webhooks list --tenant acme --json",
		Args:        noArgs,
		Annotations: readsConfig(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.callAPI(cmd.Context(), af, func(ctx context.Context, c *apiClient) error {
				return listWebhooks(ctx, c, tenant, asJSON, a.stdout)
			})
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "only this tenant's webhooks")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON, one webhook a line")
	return cmd
}

func newWebhooksCreateCommand(a *app, af *apiFlags) *cobra.Command {
	var hookURL, events, description, tenant, signingScheme, secret string
	var inactive, asJSON bool
	var batchEvents int
	var batchBytes, batchWait string
	headers := headerFlags{}
	cmd := &cobra.Command{
		Use:   "create --url URL --events a,b",
		Short: "Register a webhook",
		Long:  "Registers a webhook and prints its id and signing secret (shown only now).\n\n" + webhooksNote,
		Example: `  walhook webhooks create --url https://crm.example.com/hooks --events 'deal.*,contact.created'
  walhook webhooks create --url https://x.example.com/in --events '*' --tenant acme --header X-Team=crm --signing github
  walhook webhooks create --url https://bulk.example.com/in --events '*' --batch-max-events 100`,
		Args:        noArgs,
		Annotations: readsConfig(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			body := map[string]any{"url": hookURL, "events": splitList(events), "description": description,
				"tenant": tenant, "signing": signingScheme, "active": !inactive}
			if secret != "" {
				body["secret"] = secret
			}
			if len(headers) > 0 {
				body["headers"] = map[string]string(headers)
			}
			if batch := batchFlags(cmd, batchEvents, batchBytes, batchWait); batch != nil {
				body["batch"] = batch
			}
			return a.callAPI(cmd.Context(), af, func(ctx context.Context, c *apiClient) error {
				var out json.RawMessage
				if err := c.do(ctx, "POST", "/v1/webhooks", body, &out); err != nil {
					return err
				}
				if asJSON {
					_, err := fmt.Fprintf(a.stdout, "%s\n", bytes.TrimSpace(out))
					return err
				}
				var h struct{ ID, URL, Secret string }
				if err := json.Unmarshal(out, &h); err != nil {
					return fmt.Errorf("decoding the created webhook: %w", err)
				}
				fmt.Fprintf(a.stdout, "created %s for %s\nsecret: %s\n(the secret is shown only now; store it with the receiver)\n", h.ID, h.URL, h.Secret)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&hookURL, "url", "", "endpoint URL (https)")
	f.StringVar(&events, "events", "", "comma-separated event names or globs")
	f.StringVar(&description, "description", "", "description")
	f.StringVar(&tenant, "tenant", "", "tenant")
	f.StringVar(&signingScheme, "signing", "", "standard-webhooks (default), hmac-sha256, stripe or github")
	f.StringVar(&secret, "secret", "", "signing secret; generated when empty")
	f.Var(headers, "header", "extra request header Name=value (repeatable)")
	f.BoolVar(&inactive, "inactive", false, "create the webhook inactive")
	f.BoolVar(&asJSON, "json", false, "print the API's JSON")
	f.IntVar(&batchEvents, "batch-max-events", 0, "send events in batches of up to this many (1 to 1000; any --batch-* flag turns batches on, the others default)")
	f.StringVar(&batchBytes, "batch-max-bytes", "", `with batches: the most bytes of event bodies per request (default "1MB")`)
	f.StringVar(&batchWait, "batch-max-wait", "", `with batches: how long a request waits for more events (default "50ms")`)
	return cmd
}

// batchFlags is the "batch" object of the --batch-* flags that were set;
// nil when none was.
func batchFlags(cmd *cobra.Command, events int, bytes, wait string) map[string]any {
	batch := map[string]any{}
	if cmd.Flags().Changed("batch-max-events") {
		batch["max_events"] = events
	}
	if bytes != "" {
		batch["max_bytes"] = bytes
	}
	if wait != "" {
		batch["max_wait"] = wait
	}
	if len(batch) == 0 {
		return nil
	}
	return batch
}

func newWebhooksDeleteCommand(a *app, af *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:         "delete ID",
		Short:       "Delete an API-registered webhook",
		Long:        "Deletes an API-registered webhook.\n\n" + webhooksNote,
		Example:     "  walhook webhooks delete ep_2b7c -c walhook.hcl",
		Args:        exactArgs(1, "one webhook id"),
		Annotations: readsConfig(),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.callAPI(cmd.Context(), af, func(ctx context.Context, c *apiClient) error {
				if err := c.do(ctx, "DELETE", "/v1/webhooks/"+url.PathEscape(args[0]), nil, nil); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "deleted %s\n", args[0])
				return nil
			})
		},
	}
}

func newWebhooksTestCommand(a *app, af *apiFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:         "test ID",
		Short:       "Send a signed test event to a webhook and show the answer",
		Long:        "Sends a signed webhook.test event and prints the endpoint's answer; exits 1 when it failed.\n\n" + webhooksNote,
		Example:     "  walhook webhooks test ep_2b7c -c walhook.hcl",
		Args:        exactArgs(1, "one webhook id"),
		Annotations: readsConfig(),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.callAPI(cmd.Context(), af, func(ctx context.Context, c *apiClient) error {
				var out json.RawMessage
				if err := c.do(ctx, "POST", "/v1/webhooks/"+url.PathEscape(args[0])+"/test", nil, &out); err != nil {
					return err
				}
				var t struct {
					OK         bool    `json:"ok"`
					StatusCode int     `json:"status_code"`
					DurationMS float64 `json:"duration_ms"`
					Error      string  `json:"error"`
					Response   string  `json:"response"`
				}
				if err := json.Unmarshal(out, &t); err != nil {
					return fmt.Errorf("decoding the test attempt: %w", err)
				}
				if asJSON {
					fmt.Fprintf(a.stdout, "%s\n", bytes.TrimSpace(out))
				} else {
					result := "delivered"
					if !t.OK {
						result = "failed: " + t.Error
					}
					fmt.Fprintf(a.stdout, "%s (status %d, %.0f ms)\n", result, t.StatusCode, t.DurationMS)
					if t.Response != "" {
						fmt.Fprintf(a.stdout, "response: %s\n", t.Response)
					}
				}
				if !t.OK {
					return exitStatus(1)
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON")
	return cmd
}

// headerFlags collects repeated --header Name=value flags.
type headerFlags map[string]string

func (h headerFlags) String() string { return "" }
func (h headerFlags) Type() string   { return "Name=value" }

func (h headerFlags) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("want Name=value, got %q", v)
	}
	h[strings.TrimSpace(k)] = val
	return nil
}

// callAPI calls fn with a client of the admin API and a 30-second deadline.
func (a *app) callAPI(ctx context.Context, af *apiFlags, fn func(context.Context, *apiClient) error) error {
	c, err := a.newAPIClient(af.api, af.token)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return fn(ctx, c)
}

// listWebhooks prints every page of GET /v1/webhooks.
func listWebhooks(ctx context.Context, c *apiClient, tenant string, asJSON bool, stdout io.Writer) error {
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
			return err
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
		return nil
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
	return tw.Flush()
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
func (a *app) newAPIClient(api, token string) (*apiClient, error) {
	if token == "" {
		token = os.Getenv("WALHOOK_ADMIN_TOKEN")
	}
	if api == "" || token == "" {
		cfg, err := a.config()
		if err != nil {
			return nil, fmt.Errorf("%w (or pass --api and --token)", err)
		}
		if cfg.Admin == nil {
			return nil, fmt.Errorf("%s has no admin block: the admin API is not served; pass --api and --token for another walhook", a.configFile())
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
