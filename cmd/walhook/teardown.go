package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/store"
)

func init() {
	register(command{name: "teardown", summary: "drop the replication slot and publication (and with --state the state schema)", run: runTeardown})
}

func runTeardown(args []string) int {
	return teardown(context.Background(), args, os.Stdin, isTerminal(os.Stdin), os.Stdout, os.Stderr)
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// teardown drops what walhook created so that an uninstalled walhook pins
// no WAL: the slot and the publication, and with --state the state
// schema. It asks for confirmation on a terminal; elsewhere it needs --yes.
func teardown(ctx context.Context, args []string, stdin io.Reader, terminal bool, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("teardown", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("c", "walhook.hcl", "config file")
	state := fs.Bool("state", false, "also drop the state schema: retry queue, attempts log, API-registered webhooks")
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, ok := loadConfig(*cfgPath)
	if !ok {
		return 1
	}
	src := cfg.Source
	plan := fmt.Sprintf("replication slot %q and publication %q", src.Slot, src.Publication)
	if *state {
		plan += fmt.Sprintf(", and state schema %q with everything in it (pending and failed deliveries, the attempts log, API-registered webhooks)", stateSchema(cfg))
	}
	if !*yes {
		if !terminal {
			fmt.Fprintf(stderr, "walhook: teardown would drop %s; stdin is not a terminal, so pass --yes to confirm\n", plan)
			return 1
		}
		fmt.Fprintf(stdout, "This drops %s.\nType \"yes\" to continue: ", plan)
		line, _ := bufio.NewReader(stdin).ReadString('\n')
		if strings.TrimSpace(line) != "yes" {
			fmt.Fprintln(stderr, "walhook: teardown cancelled; nothing was dropped")
			return 1
		}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	slotExisted, pubExisted, err := exists(ctx, src.URL, src.Slot, src.Publication)
	if err != nil {
		fmt.Fprintf(stderr, "walhook: %v\n", err)
		return 1
	}
	if err := cdc.Teardown(ctx, src.URL, src.Slot, src.Publication); err != nil {
		fmt.Fprintf(stderr, "walhook: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, dropped("replication slot", src.Slot, slotExisted))
	fmt.Fprintln(stdout, dropped("publication", src.Publication, pubExisted))
	if *state {
		if err := dropState(ctx, cfg); err != nil {
			fmt.Fprintf(stderr, "walhook: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "dropped state schema %s\n", stateSchema(cfg))
	}
	return 0
}

func dropped(what, name string, existed bool) string {
	if existed {
		return "dropped " + what + " " + name
	}
	return what + " " + name + " did not exist"
}

// exists reports whether the slot and the publication exist.
func exists(ctx context.Context, url, slot, publication string) (slotOK, pubOK bool, err error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return false, false, fmt.Errorf("connecting to the source database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	err = conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1),
		EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $2)`, slot, publication).Scan(&slotOK, &pubOK)
	if err != nil {
		return false, false, fmt.Errorf("looking up the slot and publication: %w", err)
	}
	return slotOK, pubOK, nil
}

func dropState(ctx context.Context, cfg *config.Config) error {
	url := cfg.State.URL
	if url == "" {
		url = cfg.Source.URL
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return fmt.Errorf("connecting to the state database: %w", err)
	}
	defer pool.Close()
	return store.Drop(ctx, pool, stateSchema(cfg))
}
