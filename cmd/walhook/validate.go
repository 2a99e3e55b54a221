package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/rules"
)

func init() {
	register(command{name: "validate", summary: "check a config file (and with --db, the database) without starting", run: runValidate})
}

func runValidate(args []string) int { return validate(args, os.Stdout, os.Stderr) }

// validate checks a config file and prints every diagnostic; 0 when there
// is no error, 1 when there is, 2 on bad usage.
func validate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "walhook.hcl", "config file")
	fs.StringVar(path, "config", "walhook.hcl", "config file (same as -c)")
	db := fs.Bool("db", false, "also connect to source.url and check tables, columns, REPLICA IDENTITY and wal_level")
	timeout := fs.Duration("timeout", 30*time.Second, "deadline for the --db checks")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: walhook validate [-c FILE] [--db]\n\nChecks a config file and prints every problem with its file, line and column.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "walhook validate: unexpected argument %q\n", fs.Arg(0))
		return 2
	}

	src, _ := os.ReadFile(*path)
	sources := map[string][]byte{*path: src}
	cfg, diags := config.Load(*path)
	if !diags.HasErrors() {
		// Compiling cannot fail on a config that loaded, but check anyway:
		// run would.
		if _, err := rules.Compile(cfg); err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot compile the rules", Detail: err.Error()})
		}
	}
	if !diags.HasErrors() && *db {
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		diags = append(diags, config.CheckDatabase(ctx, cfg)...)
		cancel()
	}
	if err := config.WriteDiagnostics(stderr, sources, diags); err != nil {
		fmt.Fprintf(stderr, "walhook validate: %v\n", err)
		return 1
	}
	if diags.HasErrors() {
		errs := 0
		for _, d := range diags {
			if d.Severity == hcl.DiagError {
				errs++
			}
		}
		fmt.Fprintf(stderr, "%s: %d error(s)\n", *path, errs)
		return 1
	}
	tables := strings.Join(cfg.Source.Tables, ", ")
	if tables == "" {
		tables = "(none)"
	}
	checked := ""
	if *db {
		checked = " (database checked)"
	}
	warnings := ""
	if len(diags) > 0 {
		warnings = fmt.Sprintf(", %d warning(s)", len(diags))
	}
	fmt.Fprintf(stdout, "ok: %d events, %d endpoints, tables: %s%s%s\n", len(cfg.Events), len(cfg.Endpoints), tables, warnings, checked)
	return 0
}
