package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/walhook/walhook/internal/version"
)

// app is what every command shares: its streams and the root's flags.
type app struct {
	stdin         io.Reader
	stdinTerminal bool
	stdout        io.Writer
	stderr        io.Writer
	// onListening, when set, is called by `walhook listen` with its
	// address once requests can arrive (tests wait on it).
	onListening func(net.Addr)

	configPath string // -c/--config; "" means defaultConfigFile
	logFormat  string
	logLevel   string
}

// stdio is the app of a process: the standard streams.
func stdio() *app {
	return &app{stdin: os.Stdin, stdinTerminal: isTerminal(os.Stdin), stdout: os.Stdout, stderr: os.Stderr}
}

// isTerminal reports whether f is a terminal; /dev/null, which a script or
// a cron job gives as stdin, is a character device but no terminal.
func isTerminal(f *os.File) bool {
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}

// commandBuilders are the subcommands; each command's file adds its own
// from init with register, so adding a command is a one-file change.
var commandBuilders []func(*app) *cobra.Command

// register adds a subcommand to walhook.
func register(build func(*app) *cobra.Command) {
	commandBuilders = append(commandBuilders, build)
}

// execute runs the walhook command line args and returns the exit status:
// 0 done, 1 failed, 2 a command line that names no valid form.
func execute(ctx context.Context, args []string, a *app) int {
	root, err := newRootCommand(a)
	if err != nil {
		fmt.Fprintf(a.stderr, "walhook: %v\n", err)
		return 1
	}
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	return exitCode(a.stderr, cmd, err)
}

// newRootCommand builds walhook's command tree.
func newRootCommand(a *app) (*cobra.Command, error) {
	return newCommandTree(a, commandBuilders)
}

// newCommandTree builds the root command with the subcommands builders
// make; two commands with one name (or alias) are an error.
func newCommandTree(a *app, builders []func(*app) *cobra.Command) (*cobra.Command, error) {
	root := &cobra.Command{
		Use:   "walhook <command>",
		Short: "Turn committed Postgres row changes into signed, retried webhooks",
		Long: `walhook turns committed Postgres row changes into signed, retried webhooks.

It tails a logical replication slot (or an outbox table), maps row changes to
named events through the HCL rules of its config file (-c, default walhook.hcl)
and POSTs each event to every subscribed endpoint until it is accepted.`,
		Example: `  walhook demo                                # a scripted story on a throwaway Postgres
  walhook validate -c walhook.hcl --db        # check a config and the database
  walhook run -c walhook.hcl                  # the daemon
  walhook status -c walhook.hcl               # slot lag, retry queue, endpoint health`,
		Version: version.Version,
		// SuggestionsFor (used by unknownSubcommand) needs it set.
		SuggestionsMinimumDistance: 2,
		Args:                       cobra.ArbitraryArgs,
		SilenceErrors:              true,
		SilenceUsage:               true,
		PersistentPreRunE:          rejectUnreadConfig,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				cmd.SetOut(a.stderr)
				_ = cmd.Help()
				return exitStatus(2)
			}
			return unknownSubcommand(cmd, args[0])
		},
	}
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetVersionTemplate("walhook {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVarP(&a.configPath, "config", "c", "", `config file (default "`+defaultConfigFile+`")`)
	pf.StringVar(&a.logFormat, "log-format", "json", `log format on stderr: "json" or "console" (for people)`)
	pf.StringVar(&a.logLevel, "log-level", "info", "debug, info, warn or error (debug logs row data)")

	seen := map[string]bool{"help": true, "completion": true}
	for _, build := range builders {
		cmd := build(a)
		for _, name := range append([]string{cmd.Name()}, cmd.Aliases...) {
			if seen[name] {
				return nil, fmt.Errorf("two commands are named %q", name)
			}
			seen[name] = true
		}
		root.AddCommand(cmd)
	}
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	return root, nil
}

// usageError is a command line that names no valid form (exit status 2);
// the command's usage line follows it.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// exitStatus ends a command that has already said why on stderr.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// exitCode reports err from cmd on w and returns the exit status.
func exitCode(w io.Writer, cmd *cobra.Command, err error) int {
	var status exitStatus
	var usage *usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &status):
		return int(status)
	case errors.As(err, &usage):
		fmt.Fprintf(w, "%s: %v\nUsage: %s\nRun '%s --help' for its flags and examples.\n",
			cmd.CommandPath(), usage.err, cmd.UseLine(), cmd.CommandPath())
		return 2
	default:
		fmt.Fprintf(w, "walhook: %v\n", err)
		return 1
	}
}

// unknownSubcommand is the error for `walhook [group] name` when name is
// no subcommand ("" when none is given).
func unknownSubcommand(cmd *cobra.Command, name string) error {
	msg := "needs a command"
	if name != "" {
		msg = fmt.Sprintf("unknown command %q", name)
		if s := cmd.SuggestionsFor(name); len(s) > 0 {
			msg += fmt.Sprintf("; did you mean %q?", s[0])
		}
	}
	var names []string
	for _, c := range cmd.Commands() {
		if c.IsAvailableCommand() {
			names = append(names, c.Name())
		}
	}
	sort.Strings(names)
	return usageErrorf("%s (commands: %s)", msg, strings.Join(names, ", "))
}

// newGroup returns a command that only holds subcommands, such as
// `walhook webhooks`: without one, or with an unknown one, it names them.
func newGroup(use, short, example string, subs ...*cobra.Command) *cobra.Command {
	g := &cobra.Command{
		Use:     use + " <command>",
		Short:   short,
		Example: example,
		Args:    cobra.ArbitraryArgs,
		// SuggestionsFor (used by unknownSubcommand) needs it set.
		SuggestionsMinimumDistance: 2,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return unknownSubcommand(cmd, "")
			}
			return unknownSubcommand(cmd, args[0])
		},
	}
	g.AddCommand(subs...)
	return g
}

// noArgs accepts a command line without positional arguments.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("unexpected argument %q (%s takes flags only)", args[0], cmd.Name())
	}
	return nil
}

// exactArgs accepts n positional arguments, named what in the error.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf("want %s, got %d argument(s)", what, len(args))
		}
		return nil
	}
}

// minArgs accepts at least n positional arguments, named what in the error.
func minArgs(n int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) < n {
			return usageErrorf("want %s", what)
		}
		return nil
	}
}

// readsConfigKey marks, in a command's Annotations, a command that reads
// the config file; -c on any other command is an error, not ignored.
const readsConfigKey = "walhook/reads-config"

// readsConfig is the Annotations of a command that reads the config file.
func readsConfig() map[string]string { return map[string]string{readsConfigKey: "yes"} }

// rejectUnreadConfig is the root's PersistentPreRunE. cobra runs only the
// nearest one, so subcommands define no PersistentPreRun of their own.
func rejectUnreadConfig(cmd *cobra.Command, _ []string) error {
	if !cmd.HasParent() {
		return nil // walhook itself: names the commands
	}
	if f := cmd.Flags().Lookup("config"); f != nil && f.Changed && cmd.Annotations[readsConfigKey] == "" {
		return usageErrorf("this command reads no config file: drop -c/--config")
	}
	return nil
}
