package main

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/walhook/walhook/cdc/outbox"
	"github.com/walhook/walhook/internal/config"
)

func init() {
	register(newOutboxCommand)
	register(newTriggersCommand)
}

func newOutboxCommand(a *app) *cobra.Command {
	var printOnly bool
	initCmd := &cobra.Command{
		Use:   "init",
		Short: "Create the outbox table and its notify trigger",
		Long: `Creates the outbox table that the source's outbox block names, with the trigger
that notifies walhook of new rows, in one transaction on source.url.`,
		Example: `  walhook outbox init -c walhook.hcl
  walhook outbox init -c walhook.hcl --print   # show the SQL, run nothing`,
		Args:        noArgs,
		Annotations: readsConfig(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.outboxConfig("add outbox { table = \"public.webhook_outbox\" } to its source")
			if err != nil {
				return err
			}
			sql, err := outbox.TableSQL(cfg.Source.Outbox.Table)
			if err != nil {
				return err
			}
			return a.runSQL(cmd.Context(), cfg, sql, printOnly, fmt.Sprintf("outbox table %s is ready", cfg.Source.Outbox.Table))
		},
	}
	initCmd.Flags().BoolVar(&printOnly, "print", false, "print the SQL instead of running it")
	return newGroup("outbox", "Create the outbox table (outbox init)", "  walhook outbox init -c walhook.hcl", initCmd)
}

func newTriggersCommand(a *app) *cobra.Command {
	sub := func(install bool) *cobra.Command {
		var printOnly bool
		use, short := "uninstall", "Remove the capture triggers from the rules' tables and others writing into the outbox"
		if install {
			use, short = "install", "Capture the rules' tables into the outbox with triggers"
		}
		cmd := &cobra.Command{
			Use:         use,
			Short:       short,
			Example:     fmt.Sprintf("  walhook triggers %s -c walhook.hcl\n  walhook triggers %[1]s -c walhook.hcl --print", use),
			Args:        noArgs,
			Annotations: readsConfig(),
			RunE: func(cmd *cobra.Command, _ []string) error {
				return a.triggers(cmd.Context(), install, printOnly)
			},
		}
		cmd.Flags().BoolVar(&printOnly, "print", false, "print the SQL instead of running it")
		return cmd
	}
	return newGroup("triggers", "Capture the rules' tables into the outbox without logical replication (install, uninstall)",
		"  walhook triggers install -c walhook.hcl\n  walhook triggers uninstall -c walhook.hcl", sub(true), sub(false))
}

// outboxConfig loads the config and requires its source's outbox block;
// hint says what to do without one.
func (a *app) outboxConfig(hint string) (*config.Config, error) {
	cfg, err := a.config()
	if err != nil {
		return nil, err
	}
	if cfg.Source.Outbox == nil {
		return nil, fmt.Errorf("%s has no outbox block in its source: %s", a.configFile(), hint)
	}
	return cfg, nil
}

// triggers runs `walhook triggers install|uninstall`.
func (a *app) triggers(ctx context.Context, install, printOnly bool) error {
	cfg, err := a.outboxConfig("triggers write into the outbox table")
	if err != nil {
		return err
	}
	tables := ruleTables(cfg)
	if len(tables) == 0 && install {
		return fmt.Errorf("%s has no event blocks, so there is no table to capture", a.configFile())
	}
	if !install && !printOnly {
		return a.uninstallTriggers(ctx, cfg)
	}
	var sql, done string
	if install {
		sql, err = outbox.TriggersSQL(cfg.Source.Outbox.Table, tables)
		done = fmt.Sprintf("capture triggers installed on %d tables, writing into %s", len(tables), cfg.Source.Outbox.Table)
	} else {
		sql, err = outbox.DropTriggersSQL(cfg.Source.Outbox.Table, tables)
	}
	if err != nil {
		return err
	}
	if install && cfg.Source.Mode != "outbox" && !printOnly {
		fmt.Fprintln(a.stderr, "walhook: warning: the source mode is not \"outbox\": captured changes are only read when polling")
	}
	return a.runSQL(ctx, cfg, sql, printOnly, done)
}

// uninstallTriggers removes the capture triggers that FindInstalled finds
// for cfg, and the capture functions nothing else runs.
func (a *app) uninstallTriggers(ctx context.Context, cfg *config.Config) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	in, err := findInstalled(ctx, cfg)
	if err != nil {
		return err
	}
	if len(in.Capture) == 0 && len(in.CaptureFunctions()) == 0 {
		fmt.Fprintln(a.stdout, "walhook: no capture triggers to remove")
		return nil
	}
	if err := removeTriggers(ctx, cfg, in, false); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "walhook: capture triggers removed from %d tables\n", len(in.CaptureTables()))
	return nil
}

// findInstalled looks up what walhook installed around cfg's outbox table
// (if it has one) and on its rules' tables.
func findInstalled(ctx context.Context, cfg *config.Config) (outbox.Installed, error) {
	conn, err := pgx.Connect(ctx, cfg.Source.URL)
	if err != nil {
		return outbox.Installed{}, fmt.Errorf("connecting to the source database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var table string
	if cfg.Source.Outbox != nil {
		table = cfg.Source.Outbox.Table
	}
	return outbox.FindInstalled(ctx, conn, table, ruleTables(cfg))
}

// removeTriggers drops the capture triggers of in and their functions, and
// with notify the outbox table's NOTIFY trigger and its function, in one
// transaction.
func removeTriggers(ctx context.Context, cfg *config.Config, in outbox.Installed, notify bool) error {
	sql := in.DropSQL(notify)
	if sql == "" {
		return nil
	}
	if err := outbox.Apply(ctx, cfg.Source.URL, sql); err != nil {
		return fmt.Errorf("removing walhook's triggers: %w", err)
	}
	return nil
}

// ruleTables lists the tables the event blocks read, sorted.
func ruleTables(cfg *config.Config) []string {
	seen := map[string]bool{}
	var tables []string
	for _, e := range cfg.Events {
		if t := e.QualifiedTable(); !seen[t] {
			seen[t] = true
			tables = append(tables, t)
		}
	}
	sort.Strings(tables)
	return tables
}

// runSQL prints sql, or runs it on the source database and prints done.
func (a *app) runSQL(ctx context.Context, cfg *config.Config, sql string, printOnly bool, done string) error {
	if printOnly {
		_, err := fmt.Fprint(a.stdout, sql)
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := outbox.Apply(ctx, cfg.Source.URL, sql); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "walhook: %s\n", done)
	return nil
}
