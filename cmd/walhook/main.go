// Command walhook turns committed Postgres row changes into signed webhooks.
package main

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/walhook/walhook/internal/version"
)

// command is one subcommand; each lives in a file of its own and registers
// itself from init.
type command struct {
	name    string
	summary string
	run     func(args []string) int
}

var commands = map[string]command{}

func register(c command) { commands[c.name] = c }

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage()
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	if os.Args[1] == "version" || os.Args[1] == "--version" {
		fmt.Println("walhook", version.Version)
		return
	}
	c, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "walhook: unknown command %q\n\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	os.Exit(c.run(os.Args[2:]))
}

func usage() {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("walhook turns committed Postgres row changes into signed, retried webhooks.\n\nUsage: walhook <command> [flags]\n\nCommands:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %-12s %s\n", n, commands[n].summary)
	}
	b.WriteString("  version      print the version\n\nRun 'walhook <command> -h' for a command's flags.\n")
	fmt.Fprint(os.Stderr, b.String())
}
