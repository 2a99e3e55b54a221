package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/walhook/walhook/internal/receiver"
	"github.com/walhook/walhook/internal/signing"
)

func init() { register(newListenCommand) }

// listenOptions are the flags of `walhook listen`.
type listenOptions struct {
	port      int
	addr      string
	secrets   []string
	scheme    string
	header    string
	tolerance time.Duration
	status    int
	color     string
}

func newListenCommand(a *app) *cobra.Command {
	var o listenOptions
	cmd := &cobra.Command{
		Use:   "listen",
		Short: "Run a local receiver that verifies and prints webhooks",
		Long: `Receives webhooks, verifies each signature and prints the event, until Ctrl-C.
Answers 204, or 401 when the signature does not verify.`,
		Example: `  walhook listen --port 9000 --secret "$CRM_WEBHOOK_SECRET"
  walhook listen --port 9001 --scheme hmac-sha256 --secret "$LEGACY_SECRET"
  walhook listen --status 500        # a failing endpoint, to watch retries`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return a.listen(ctx, o)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.port, "port", 9000, "port to listen on (0 picks a free one)")
	f.StringVar(&o.addr, "addr", "127.0.0.1", "address to listen on")
	f.StringArrayVar(&o.secrets, "secret", nil, "the endpoint's signing secret; repeat during a rotation (default $WALHOOK_SECRET)")
	f.StringVar(&o.scheme, "scheme", signing.StandardWebhooks, "signing scheme: "+strings.Join(signing.Schemes, ", "))
	f.StringVar(&o.header, "signature-header", "", "the signature header, if the endpoint renames it (hmac-sha256, stripe, github)")
	f.DurationVar(&o.tolerance, "tolerance", signing.DefaultTolerance, "largest accepted age of a signed timestamp")
	f.IntVar(&o.status, "status", 0, "answer every request with this status instead, to simulate a failing endpoint (e.g. 500)")
	f.StringVar(&o.color, "color", "auto", "colour output: auto, always or never")
	return cmd
}

// listen serves a verifying receiver until ctx is done.
func (a *app) listen(ctx context.Context, o listenOptions) error {
	secrets := o.secrets
	if len(secrets) == 0 {
		if s := os.Getenv("WALHOOK_SECRET"); s != "" {
			secrets = []string{s}
		}
	}
	check := secrets
	if len(check) == 0 {
		check = []string{signing.GenerateSecret()} // still check the scheme and header
	}
	if _, err := signing.New(o.scheme, check, signing.Options{SignatureHeader: o.header}); err != nil {
		return &usageError{err}
	}
	color, err := useColor(o.color, a.stdout)
	if err != nil {
		return &usageError{err}
	}
	opts := receiver.Options{
		Scheme:          o.scheme,
		Secrets:         secrets,
		SignatureHeader: o.header,
		Tolerance:       o.tolerance,
		Out:             a.stdout,
		Color:           color,
	}
	if o.status != 0 {
		if o.status < 100 || o.status > 599 {
			return usageErrorf("--status %d is not an HTTP status", o.status)
		}
		opts.Fail = func(*receiver.Received) int { return o.status }
	}

	ln, err := net.Listen("tcp", net.JoinHostPort(o.addr, strconv.Itoa(o.port)))
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: receiver.New(opts), ReadHeaderTimeout: 10 * time.Second}
	if len(secrets) == 0 {
		fmt.Fprintln(a.stderr, "walhook listen: no --secret given: signatures are NOT verified")
	}
	fmt.Fprintf(a.stderr, "walhook listen: receiving webhooks on http://%s/ (%s, %d secret(s)); Ctrl-C to stop\n", ln.Addr(), o.scheme, len(secrets))
	if a.onListening != nil {
		a.onListening(ln.Addr())
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("stopping the receiver: %w", err)
	}
	<-served
	return nil
}

// useColor decides whether to colour output written to w.
func useColor(mode string, w io.Writer) (bool, error) {
	switch mode {
	case "always":
		return true, nil
	case "never":
		return false, nil
	case "auto":
		if os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
			return false, nil
		}
		return isTerminalWriter(w), nil
	default:
		return false, fmt.Errorf("--color %q: want auto, always or never", mode)
	}
}
