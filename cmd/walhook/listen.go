package main

import (
	"context"
	"errors"
	"flag"
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

	"github.com/walhook/walhook/internal/receiver"
	"github.com/walhook/walhook/internal/signing"
)

func init() {
	register(command{name: "listen", summary: "run a local receiver that verifies and prints webhooks", run: runListen})
}

func runListen(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return listen(ctx, args, os.Stdout, os.Stderr, nil)
}

// listen serves a verifying receiver until ctx is done; ready, if set, is
// called with the listening address once requests can arrive.
func listen(ctx context.Context, args []string, stdout, stderr io.Writer, ready func(net.Addr)) int {
	fs := flag.NewFlagSet("walhook listen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: walhook listen [--port 9000] [--secret whsec_…] [flags]\n\n"+
			"Receives webhooks, verifies each signature and prints the event, until Ctrl-C.\n"+
			"Answers 204, or 401 when the signature does not verify.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	port := fs.Int("port", 9000, "port to listen on (0 picks a free one)")
	addr := fs.String("addr", "127.0.0.1", "address to listen on")
	var secrets []string
	fs.Func("secret", "the endpoint's signing secret; repeat during a rotation (default $WALHOOK_SECRET)", func(s string) error {
		secrets = append(secrets, s)
		return nil
	})
	scheme := fs.String("scheme", signing.StandardWebhooks, "signing scheme: "+strings.Join(signing.Schemes, ", "))
	header := fs.String("signature-header", "", "the signature header, if the endpoint renames it (hmac-sha256, stripe, github)")
	tolerance := fs.Duration("tolerance", signing.DefaultTolerance, "largest accepted age of a signed timestamp")
	status := fs.Int("status", 0, "answer every request with this status instead, to simulate a failing endpoint (e.g. 500)")
	colorFlag := fs.String("color", "auto", "colour output: auto, always or never")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "walhook listen: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if len(secrets) == 0 {
		if s := os.Getenv("WALHOOK_SECRET"); s != "" {
			secrets = []string{s}
		}
	}
	check := secrets
	if len(check) == 0 {
		check = []string{signing.GenerateSecret()} // still check the scheme and header
	}
	if _, err := signing.New(*scheme, check, signing.Options{SignatureHeader: *header}); err != nil {
		fmt.Fprintf(stderr, "walhook listen: %v\n", err)
		return 2
	}
	color, err := useColor(*colorFlag, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "walhook listen: %v\n", err)
		return 2
	}
	opts := receiver.Options{
		Scheme:          *scheme,
		Secrets:         secrets,
		SignatureHeader: *header,
		Tolerance:       *tolerance,
		Out:             stdout,
		Color:           color,
	}
	if *status != 0 {
		if *status < 100 || *status > 599 {
			fmt.Fprintf(stderr, "walhook listen: --status %d is not an HTTP status\n", *status)
			return 2
		}
		opts.Fail = func(*receiver.Received) int { return *status }
	}

	ln, err := net.Listen("tcp", net.JoinHostPort(*addr, strconv.Itoa(*port)))
	if err != nil {
		fmt.Fprintf(stderr, "walhook listen: %v\n", err)
		return 1
	}
	srv := &http.Server{Handler: receiver.New(opts), ReadHeaderTimeout: 10 * time.Second}
	if len(secrets) == 0 {
		fmt.Fprintln(stderr, "walhook listen: no --secret given: signatures are NOT verified")
	}
	fmt.Fprintf(stderr, "walhook listen: receiving webhooks on http://%s/ (%s, %d secret(s)); Ctrl-C to stop\n", ln.Addr(), *scheme, len(secrets))
	if ready != nil {
		ready(ln.Addr())
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		fmt.Fprintf(stderr, "walhook listen: %v\n", err)
		return 1
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		fmt.Fprintf(stderr, "walhook listen: stopping: %v\n", err)
		return 1
	}
	return 0
}

// useColor decides whether to colour output written to w.
func useColor(mode string, w io.Writer) (bool, error) {
	switch mode {
	case "always":
		return true, nil
	case "never":
		return false, nil
	case "auto":
		f, ok := w.(*os.File)
		if !ok || os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
			return false, nil
		}
		info, err := f.Stat()
		return err == nil && info.Mode()&os.ModeCharDevice != 0, nil
	default:
		return false, fmt.Errorf("--color %q: want auto, always or never", mode)
	}
}
