package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// checkInvocation returns why argv (a command line after "walhook") is
// not one walhook accepts: an unknown command, or a flag the command does
// not have. Flag values are not checked.
func checkInvocation(argv []string) error {
	root, err := newRootCommand(testApp(io.Discard, io.Discard))
	if err != nil {
		return err
	}
	cmd, rest, err := root.Find(argv)
	if err != nil {
		return err
	}
	if cmd == root && len(argv) > 0 && !strings.HasPrefix(argv[0], "-") {
		return fmt.Errorf("walhook has no command %q", argv[0])
	}
	for _, arg := range rest {
		if arg == "--" {
			break
		}
		if !strings.HasPrefix(arg, "-") || arg == "-" {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		if lookupFlag(cmd, name, !strings.HasPrefix(arg, "--")) == nil {
			return fmt.Errorf("%s has no flag %s", cmd.CommandPath(), arg)
		}
	}
	return nil
}

// lookupFlag finds a flag of cmd, its own or inherited, by name or (short)
// by shorthand.
func lookupFlag(cmd *cobra.Command, name string, short bool) *pflag.Flag {
	for _, fs := range []*pflag.FlagSet{cmd.Flags(), cmd.InheritedFlags()} {
		if short && len(name) == 1 {
			if f := fs.ShorthandLookup(name); f != nil {
				return f
			}
			continue
		}
		if f := fs.Lookup(name); f != nil {
			return f
		}
	}
	return nil
}

// allCommands lists every command of the tree, the root first.
func allCommands(t *testing.T) []*cobra.Command {
	t.Helper()
	root, err := newRootCommand(testApp(io.Discard, io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	var all []*cobra.Command
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		all = append(all, c)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return all
}

// commandArgs is the command line naming c ("walhook" left out).
func commandArgs(c *cobra.Command) []string {
	return strings.Fields(strings.TrimPrefix(c.CommandPath(), "walhook"))
}

// TestEveryCommandHelp: `walhook <cmd> --help` and `-h` print the
// command's usage and examples on stdout and exit 0, for every command.
func TestEveryCommandHelp(t *testing.T) {
	t.Parallel()
	cmds := allCommands(t)
	if len(cmds) < 20 {
		t.Fatalf("only %d commands", len(cmds))
	}
	for _, c := range cmds {
		if c.Hidden {
			continue
		}
		for _, flag := range []string{"--help", "-h"} {
			args := append(commandArgs(c), flag)
			code, out, errOut := walhook(context.Background(), args...)
			if code != 0 || !strings.Contains(out, "Usage:") || errOut != "" {
				t.Errorf("walhook %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
			}
		}
		// Every command of walhook's own shows how it is used.
		if c.Name() != "help" && c.Parent() != nil && c.Parent().Name() != "completion" && c.Name() != "completion" && c.Example == "" {
			t.Errorf("walhook %s has no examples", strings.Join(commandArgs(c), " "))
		}
	}
}

// TestUsageErrors: unknown commands and flags, misplaced and missing
// arguments exit 2 and name the form to use.
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args []string
		want []string
	}{
		{nil, []string{"Available Commands:"}},
		{[]string{"-c", "walhook.hcl"}, []string{"Available Commands:"}},
		{[]string{"stauts"}, []string{`unknown command "stauts"; did you mean "status"?`, "Usage: walhook <command> [flags]"}},
		{[]string{"webhooks"}, []string{"webhooks: needs a command (commands: create, delete, list, test)"}},
		{[]string{"webhooks", "frobnicate"}, []string{`unknown command "frobnicate"`}},
		{[]string{"webhooks", "delete", "--url", "https://x"}, []string{"walhook webhooks delete: unknown flag: --url", "Usage: walhook webhooks delete ID [flags]"}},
		{[]string{"webhooks", "delete"}, []string{"want one webhook id, got 0", "Usage: walhook webhooks delete ID"}},
		{[]string{"webhooks", "test", "ep_1", "ep_2"}, []string{"want one webhook id, got 2"}},
		{[]string{"deliveries", "retry", "-c", "x.hcl"}, []string{"want at least one delivery id", "Usage: walhook deliveries retry DELIVERY_ID..."}},
		{[]string{"deliveries", "recover", "-c", "x.hcl", "--endpoint", "cfg:crm"}, []string{"--endpoint and --since are required"}},
		{[]string{"deliveries", "list", "-c", "x.hcl", "--since", "whenever"}, []string{"--since: \"whenever\" is neither"}},
		{[]string{"deliveries", "list", "-c", "x.hcl", "--limit", "0"}, []string{"--limit must be from 1 to"}},
		{[]string{"validate", "walhook.hcl"}, []string{`unexpected argument "walhook.hcl"`, "Usage: walhook validate [flags]"}},
		{[]string{"run", "--frobnicate"}, []string{"unknown flag: --frobnicate"}},
		{[]string{"status", "-x"}, []string{"unknown shorthand flag: 'x'"}},
		{[]string{"run", "--log-format", "xml", "-c", "x.hcl"}, []string{`--log-format "xml": want "json" or "console"`}},
		{[]string{"listen", "-c", "walhook.hcl"}, []string{"walhook listen: this command reads no config file"}},
		{[]string{"tail", "--url", "postgres://x/y"}, []string{"--url and --tables are required"}},
		{[]string{"outbox", "create"}, []string{`unknown command "create"`, "(commands: init)"}},
		{[]string{"version", "now"}, []string{`unexpected argument "now"`}},
	}
	for _, c := range cases {
		code, out, errOut := walhook(context.Background(), c.args...)
		if code != 2 {
			t.Errorf("walhook %s: exit %d, want 2\n%s%s", strings.Join(c.args, " "), code, out, errOut)
			continue
		}
		for _, want := range c.want {
			if !strings.Contains(errOut, want) {
				t.Errorf("walhook %s: stderr lacks %q:\n%s", strings.Join(c.args, " "), want, errOut)
			}
		}
	}
}

// configCommands are the command lines that read a config file, with the
// arguments each needs besides it.
var configCommands = [][]string{
	{"run"}, {"validate"}, {"status"}, {"teardown", "--yes"}, {"demo"},
	{"deliveries", "list"}, {"deliveries", "retry", "dlv_1"}, {"deliveries", "recover", "--endpoint", "cfg:crm", "--since", "1h"},
	{"webhooks", "list"}, {"webhooks", "create", "--url", "https://x.example.com"}, {"webhooks", "delete", "ep_1"}, {"webhooks", "test", "ep_1"},
	{"outbox", "init"}, {"triggers", "install"}, {"triggers", "uninstall"}, {"events"}, {"events", "--schema", "contact.created"},
	{"backfill", "--table", "contacts"}, {"evaluations", "list"}, {"evaluations", "replay", "--all"},
	{"slot", "recreate", "--yes"},
}

// TestConfigFlag: every command that reads a config takes -c and --config
// (both reach the file), and without either says how to name one.
func TestConfigFlag(t *testing.T) {
	t.Parallel()
	// A config that does not load: each command must report this file's
	// problem, which shows it read the file -c or --config named.
	bad := filepath.Join(t.TempDir(), "bad.hcl")
	if err := os.WriteFile(bad, []byte("source \"postgres\" {\n  url = 42\n  frobnicate = true\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Commands run in the test's working directory, which has no walhook.hcl.
	if _, err := os.Stat(defaultConfigFile); err == nil {
		t.Fatalf("%s exists in the test directory", defaultConfigFile)
	}
	missing := filepath.Join(t.TempDir(), "missing.hcl")
	covered := map[string]bool{}
	for _, args := range configCommands {
		name := strings.Join(args[:min(2, len(args))], " ")
		covered[args[0]] = true
		for _, flag := range []string{"-c", "--config"} {
			with := func(path string) []string { return append(append([]string{}, args...), flag, path) }
			code, _, errOut := walhook(context.Background(), with(missing)...)
			if code != 1 || !strings.Contains(errOut, "config file "+missing+" does not exist") {
				t.Errorf("walhook %s %s %s: exit %d\n%s", name, flag, missing, code, errOut)
			}
			if args[0] == "demo" {
				continue // the demo loads the file after starting a database (see demo_test.go)
			}
			code, out, errOut := walhook(context.Background(), with(bad)...)
			if code != 1 || !strings.Contains(errOut, bad+":3:3: error: Unsupported argument") {
				t.Errorf("walhook %s %s %s: exit %d, want 1 and the file's diagnostics\n%s%s", name, flag, bad, code, out, errOut)
			}
		}
		if args[0] == "demo" {
			continue // without -c the demo finds config.example.hcl in a parent directory
		}
		code, _, errOut := walhook(context.Background(), args...)
		if code != 2 || !strings.Contains(errOut, "no config file: walhook.hcl is not in this directory; pass -c FILE (or --config FILE)") {
			t.Errorf("walhook %s without -c: exit %d\n%s", name, code, errOut)
		}
	}
	// Every command that reads a config is in the list above.
	for _, c := range allCommands(t) {
		if c.Annotations[readsConfigKey] != "" && !covered[commandArgs(c)[0]] {
			t.Errorf("walhook %s reads a config and is not tested with -c and --config", c.CommandPath())
		}
	}
}

// TestDuplicateCommandNames: two commands with one name are refused.
func TestDuplicateCommandNames(t *testing.T) {
	t.Parallel()
	builders := append(append([]func(*app) *cobra.Command{}, commandBuilders...), newStatusCommand)
	if _, err := newCommandTree(testApp(io.Discard, io.Discard), builders); err == nil || !strings.Contains(err.Error(), `two commands are named "status"`) {
		t.Errorf("err = %v", err)
	}
}

// TestCompletionAndVersion: shell completion scripts and the version.
func TestCompletionAndVersion(t *testing.T) {
	t.Parallel()
	for shell, want := range map[string]string{"bash": "__start_walhook", "zsh": "#compdef walhook", "fish": "complete -c walhook"} {
		code, out, errOut := walhook(context.Background(), "completion", shell)
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("completion %s: exit %d, stdout lacks %q\n%s", shell, code, want, errOut)
		}
	}
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, _ := walhook(context.Background(), args...)
		if code != 0 || !strings.HasPrefix(out, "walhook ") {
			t.Errorf("%v: exit %d, %q", args, code, out)
		}
	}
}

// TestBinaryDoesNotLinkTesting: the release binary is built without the
// testing package and the test helpers (the demo's throwaway cluster comes
// from internal/pgcluster).
func TestBinaryDoesNotLinkTesting(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "testing" || strings.Contains(pkg, "testenv") {
			t.Errorf("walhook links %s", pkg)
		}
	}
}

// TestHelpShowsNoSecret: no help shows the value of an environment
// variable a flag defaults to (a database URL carries its password). Not
// parallel: it sets the environment.
func TestHelpShowsNoSecret(t *testing.T) {
	const secret = "s3cret-pw-in-the-environment"
	for _, name := range []string{"DATABASE_URL", "WALHOOK_ADMIN_TOKEN", "WALHOOK_SECRET", "WALHOOK_STATE_URL"} {
		t.Setenv(name, "postgres://walhook:"+secret+"@db.example.com/app")
	}
	for _, c := range allCommands(t) {
		args := append(commandArgs(c), "--help")
		if _, out, _ := walhook(context.Background(), args...); strings.Contains(out, secret) {
			t.Errorf("walhook %s shows a value from the environment:\n%s", strings.Join(args, " "), out)
		}
	}
}
