package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/walhook/walhook/cmd/walhook/demo"
)

func init() {
	register(command{name: "demo", summary: "play a scripted story on a throwaway Postgres and print the signed webhooks", run: runDemo})
}

func runDemo(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C ends the process at once
	}()
	defer stop()
	return demoMain(ctx, args, os.Stdout, os.Stderr)
}

// demoMain parses the demo's flags and runs it until it ends or ctx does.
func demoMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("walhook demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: walhook demo [--keep] [--admin] [flags]\n\n"+
			"Starts a throwaway Postgres (or uses $DATABASE_URL), loads the sample CRM schema, runs\n"+
			"walhook with config.example.hcl's rules against local receivers that verify every\n"+
			"signature, plays a short story through plain SQL and prints each webhook delivered.\n"+
			"Ctrl-C stops everything and removes what the demo created.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	cfgPath := fs.String("c", "", "config whose rules the demo runs (default: config.example.hcl here or in a parent directory)")
	dbURL := fs.String("database-url", os.Getenv("DATABASE_URL"), "a Postgres server (wal_level=logical) to create the demo database on, instead of a throwaway cluster (default $DATABASE_URL)")
	keep := fs.Bool("keep", false, "keep running after the story, with a psql command line to make changes by hand, until Ctrl-C")
	admin := fs.Bool("admin", false, "also serve the admin API (with a generated token, printed)")
	adminListen := fs.String("admin-listen", "", "admin API address with --admin (default: the config's admin.listen)")
	colorFlag := fs.String("color", "auto", "colour output: auto, always or never")
	logLevel := fs.String("log-level", "warn", "walhook's own log level on stderr: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "walhook demo: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	color, err := useColor(*colorFlag, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "walhook demo: %v\n", err)
		return 2
	}
	lvl, err := zerolog.ParseLevel(*logLevel)
	if err != nil || *logLevel == "" {
		fmt.Fprintf(stderr, "walhook demo: --log-level %q: want debug, info, warn or error\n", *logLevel)
		return 2
	}
	if *cfgPath == "" {
		if *cfgPath, err = findExampleConfig(); err != nil {
			fmt.Fprintf(stderr, "walhook demo: %v\n", err)
			return 1
		}
	}
	log := zerolog.New(zerolog.ConsoleWriter{Out: stderr, TimeFormat: "15:04:05.000", NoColor: !color}).
		Level(lvl).With().Timestamp().Logger()

	err = demo.Run(ctx, demo.Options{
		ConfigPath:  *cfgPath,
		DatabaseURL: *dbURL,
		Keep:        *keep,
		Admin:       *admin,
		AdminListen: *adminListen,
		Out:         stdout,
		Color:       color,
		Log:         log,
	})
	if err != nil {
		fmt.Fprintf(stderr, "walhook demo: %v\n", err)
		return 1
	}
	return 0
}

// findExampleConfig looks for config.example.hcl in the working directory
// and its parents (the demo runs from anywhere in a walhook checkout).
func findExampleConfig() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding config.example.hcl: %w", err)
	}
	for dir := wd; ; {
		p := filepath.Join(dir, "config.example.hcl")
		if _, err := os.Stat(p); err == nil {
			if rel, err := filepath.Rel(wd, p); err == nil {
				return rel, nil
			}
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("config.example.hcl is not in this directory or a parent: run the demo from a walhook checkout, or pass -c FILE")
		}
		dir = parent
	}
}
