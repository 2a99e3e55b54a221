package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walhook/walhook/cdc/outbox"
	"github.com/walhook/walhook/internal/config"
)

func init() {
	register(command{name: "outbox", summary: "outbox init: create the outbox table and its notify trigger (--print: show the SQL)", run: runOutbox})
	register(command{name: "triggers", summary: "triggers install|uninstall: capture the rules' tables into the outbox without logical replication", run: runTriggers})
}

func runOutbox(args []string) int {
	return outboxCommand(context.Background(), args, os.Stdout, os.Stderr)
}

func runTriggers(args []string) int {
	return triggersCommand(context.Background(), args, os.Stdout, os.Stderr)
}

// outboxCommand runs `walhook outbox init`.
func outboxCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "init" {
		fmt.Fprintln(stderr, "usage: walhook outbox init -c walhook.hcl [--print]")
		return 2
	}
	fs := flag.NewFlagSet("outbox init", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("c", "walhook.hcl", "config file (its source outbox block names the table)")
	print := fs.Bool("print", false, "print the SQL instead of running it")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	cfg, ok := loadConfig(*cfgPath)
	if !ok {
		return 1
	}
	if cfg.Source.Outbox == nil {
		fmt.Fprintf(stderr, "walhook: %s has no outbox block in its source: add outbox { table = \"public.webhook_outbox\" }\n", *cfgPath)
		return 1
	}
	sql, err := outbox.TableSQL(cfg.Source.Outbox.Table)
	if err != nil {
		fmt.Fprintf(stderr, "walhook: %v\n", err)
		return 1
	}
	return runSQL(ctx, cfg, sql, *print, fmt.Sprintf("outbox table %s is ready", cfg.Source.Outbox.Table), stdout, stderr)
}

// triggersCommand runs `walhook triggers install|uninstall`.
func triggersCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "install" && args[0] != "uninstall") {
		fmt.Fprintln(stderr, "usage: walhook triggers install|uninstall -c walhook.hcl [--print]")
		return 2
	}
	install := args[0] == "install"
	fs := flag.NewFlagSet("triggers "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("c", "walhook.hcl", "config file (its events name the tables, its outbox block the outbox)")
	print := fs.Bool("print", false, "print the SQL instead of running it")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	cfg, ok := loadConfig(*cfgPath)
	if !ok {
		return 1
	}
	if cfg.Source.Outbox == nil {
		fmt.Fprintf(stderr, "walhook: %s has no outbox block: triggers write into the outbox table\n", *cfgPath)
		return 1
	}
	tables := ruleTables(cfg)
	if len(tables) == 0 {
		fmt.Fprintf(stderr, "walhook: %s has no event blocks, so there is no table to capture\n", *cfgPath)
		return 1
	}
	var sql, done string
	var err error
	if install {
		sql, err = outbox.TriggersSQL(cfg.Source.Outbox.Table, tables)
		done = fmt.Sprintf("capture triggers installed on %d tables, writing into %s", len(tables), cfg.Source.Outbox.Table)
	} else {
		sql, err = outbox.DropTriggersSQL(cfg.Source.Outbox.Table, tables)
		done = fmt.Sprintf("capture triggers removed from %d tables", len(tables))
	}
	if err != nil {
		fmt.Fprintf(stderr, "walhook: %v\n", err)
		return 1
	}
	if install && cfg.Source.Mode != "outbox" && !*print {
		fmt.Fprintln(stderr, "walhook: warning: the source mode is not \"outbox\": captured changes are only read when polling")
	}
	return runSQL(ctx, cfg, sql, *print, done, stdout, stderr)
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

// runSQL prints sql, or runs it on the source database in one transaction.
func runSQL(ctx context.Context, cfg *config.Config, sql string, print bool, done string, stdout, stderr io.Writer) int {
	if print {
		fmt.Fprint(stdout, sql)
		return 0
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, cfg.Source.URL)
	if err != nil {
		fmt.Fprintf(stderr, "walhook: connecting to the source database: %v\n", err)
		return 1
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// Simple protocol: several statements in one round trip, one implicit
	// transaction.
	if _, err := conn.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol); err != nil {
		fmt.Fprintf(stderr, "walhook: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "walhook: %s\n", done)
	return 0
}
