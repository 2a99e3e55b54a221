package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/walhook/walhook/cmd/walhook/demo"
)

func init() { register(newDemoCommand) }

// demoOptions are the flags of `walhook demo`.
type demoOptions struct {
	databaseURL string
	keep, admin bool
	adminListen string
	color       string
	logLevel    string
	logFormat   string // console unless --log-format is given
}

func newDemoCommand(a *app) *cobra.Command {
	var o demoOptions
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Play a scripted story on a throwaway Postgres and print the signed webhooks",
		Long: `Starts a throwaway Postgres (or uses $DATABASE_URL), loads the sample CRM schema, runs
walhook with config.example.hcl's rules (or -c FILE's) against local receivers that verify
every signature, plays a short story through plain SQL and prints each webhook delivered.
Ctrl-C stops everything and removes what the demo created. Its logs are for people
unless --log-format json is given.`,
		Example: `  walhook demo
  walhook demo --keep --admin           # keep running, with a psql line and the admin API
  walhook demo --database-url "postgres://localhost/postgres"`,
		Args:        noArgs,
		Annotations: readsConfig(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			go func() {
				<-ctx.Done()
				stop() // a second Ctrl-C ends the process at once
			}()
			defer stop()
			if o.databaseURL == "" {
				o.databaseURL = os.Getenv("DATABASE_URL")
			}
			o.logFormat = "console"
			if cmd.Flags().Changed("log-format") {
				o.logFormat = a.logFormat
			}
			return a.demo(ctx, o)
		},
	}
	f := cmd.Flags()
	// Not os.Getenv as the default: help would print the URL, password included.
	f.StringVar(&o.databaseURL, "database-url", "", "a Postgres server (wal_level=logical) to create the demo database on, instead of a throwaway cluster (default $DATABASE_URL)")
	f.BoolVar(&o.keep, "keep", false, "keep running after the story, with a psql command line to make changes by hand, until Ctrl-C")
	f.BoolVar(&o.admin, "admin", false, "also serve the admin API (with a generated token, printed)")
	f.StringVar(&o.adminListen, "admin-listen", "", "admin API address with --admin (default: the config's admin.listen)")
	f.StringVar(&o.color, "color", "auto", "colour output: auto, always or never")
	// The demo's own --log-level (default warn) shadows the root's.
	f.StringVar(&o.logLevel, "log-level", "warn", "walhook's own log level on stderr: debug, info, warn or error")
	return cmd
}

// demo runs the demo until it ends or ctx does.
func (a *app) demo(ctx context.Context, o demoOptions) error {
	color, err := useColor(o.color, a.stdout)
	if err != nil {
		return &usageError{err}
	}
	log, err := newLogger(a.stderr, o.logFormat, o.logLevel)
	if err != nil {
		return err
	}
	cfgPath := a.configPath
	if cfgPath == "" {
		cfgPath, err = findExampleConfig()
	} else {
		cfgPath, err = a.existingConfigFile()
	}
	if err != nil {
		return err
	}
	err = demo.Run(ctx, demo.Options{
		ConfigPath:  cfgPath,
		DatabaseURL: o.databaseURL,
		Keep:        o.keep,
		Admin:       o.admin,
		AdminListen: o.adminListen,
		Out:         a.stdout,
		Color:       color,
		Log:         log,
	})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	return nil
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
