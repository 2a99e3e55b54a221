// Command walhook turns committed Postgres row changes into signed webhooks.
//
// The command line is built with cobra. Each subcommand lives in a file of
// its own: a constructor newXCommand(a *app) *cobra.Command registered from
// the file's init with register (see root.go and version.go, the smallest).
// A command that reads the config file loads it with a.config() and sets
// Annotations: readsConfig(); it logs with a.logger(), writes to a.stdout
// and a.stderr, and returns usageErrorf(...) for a command line it cannot
// use (exit 2), exitStatus(n) after reporting a failure itself, or any
// other error (printed, exit 1). cli_test.go checks every command's help,
// and -c/--config on every command that reads a config.
package main

import (
	"context"
	"os"
)

func main() {
	os.Exit(execute(context.Background(), os.Args[1:], stdio()))
}
