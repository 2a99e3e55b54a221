package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/spf13/cobra"

	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/rules"
)

func init() { register(newValidateCommand) }

func newValidateCommand(a *app) *cobra.Command {
	var db bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check a config file (and with --db, the database) without starting",
		Long: `Checks a config file and prints every problem with its file, line and column.
With --db it also connects to source.url and checks the tables, columns,
REPLICA IDENTITY (also for large TOASTable columns read on update), the outbox
table's columns, types, nullability and primary key and its NOTIFY and capture
triggers (saying what to change; run refuses a table it cannot read), tables
without a primary key that run could not publish without making Postgres
refuse the application's UPDATE and DELETE (see docs/operations.md), that an
existing replication slot of that name belongs to this database, that the slot
walhook recorded is still there, valid and where walhook left it, that its
publication exists, and wal_level. Exits 0 when there is no error, 1 when there is.`,
		Example: `  walhook validate -c walhook.hcl
  walhook validate --config walhook.hcl --db`,
		Args:        noArgs,
		Annotations: readsConfig(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.validate(cmd.Context(), db, timeout)
		},
	}
	cmd.Flags().BoolVar(&db, "db", false, "also connect to source.url and check tables, columns, REPLICA IDENTITY, the slot and wal_level")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "deadline for the --db checks")
	return cmd
}

// validate checks the config file and prints every diagnostic.
func (a *app) validate(ctx context.Context, db bool, timeout time.Duration) error {
	path, err := a.existingConfigFile()
	if err != nil {
		return err
	}
	src, _ := os.ReadFile(path)
	sources := map[string][]byte{path: src}
	cfg, diags := config.Load(path)
	if !diags.HasErrors() {
		// Compiling cannot fail on a config that loaded, but check anyway:
		// run would.
		if _, err := rules.Compile(cfg); err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot compile the rules", Detail: err.Error()})
		}
	}
	if !diags.HasErrors() && db {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		diags = append(diags, config.CheckDatabase(ctx, cfg)...)
		diags = append(diags, checkCapture(ctx, cfg)...)
		diags = append(diags, checkOutbox(ctx, cfg)...)
		diags = append(diags, slotDiagnostics(ctx, cfg)...)
		cancel()
	}
	if err := config.WriteDiagnostics(a.stderr, sources, diags); err != nil {
		return fmt.Errorf("printing the diagnostics: %w", err)
	}
	if diags.HasErrors() {
		errs := 0
		for _, d := range diags {
			if d.Severity == hcl.DiagError {
				errs++
			}
		}
		fmt.Fprintf(a.stderr, "%s: %d error(s)\n", path, errs)
		return exitStatus(1)
	}
	tables := strings.Join(cfg.Source.Tables, ", ")
	if tables == "" {
		tables = "(none)"
	}
	checked := ""
	if db {
		checked = " (database checked)"
	}
	warnings := ""
	if len(diags) > 0 {
		warnings = fmt.Sprintf(", %d warning(s)", len(diags))
	}
	fmt.Fprintf(a.stdout, "ok: %d events, %d endpoints, tables: %s%s%s\n", len(cfg.Events), len(cfg.Endpoints), tables, warnings, checked)
	return nil
}
