package main

import (
	"fmt"
	"strings"

	"github.com/walhook/walhook/cdc/outbox"
)

// leftover is something walhook installed that teardown leaves: name for
// the confirmation, line for the output (what it still does and how to
// remove it).
type leftover struct {
	name, line string
}

// triggerDrops describes what teardown --triggers removes of in.
func triggerDrops(in outbox.Installed) []string {
	var drops []string
	if len(in.Capture) > 0 {
		drops = append(drops, captureTriggers(in))
	}
	if in.Notify != nil {
		drops = append(drops, fmt.Sprintf("trigger %s on %s", in.Notify.Name, in.Notify.Table))
	}
	if funcs := triggerFunctions(in); len(funcs) > 0 {
		drops = append(drops, functions(funcs))
	}
	return drops
}

// captureTriggers names the capture triggers of in and their tables.
func captureTriggers(in outbox.Installed) string {
	var names []string
	seen := map[string]bool{}
	for _, tr := range in.Capture {
		if !seen[tr.Name] {
			seen[tr.Name] = true
			names = append(names, tr.Name)
		}
	}
	return fmt.Sprintf("capture triggers %s on %s", listJoin(names), strings.Join(in.CaptureTables(), ", "))
}

// triggerFunctions lists the functions removing in's triggers drops, as
// calls.
func triggerFunctions(in outbox.Installed) []string {
	var funcs []string
	for _, f := range append(in.CaptureFunctions(), in.NotifyFunctions()...) {
		funcs = append(funcs, f+"()")
	}
	return funcs
}

// functions names funcs: "function f()" or "functions f(), g()".
func functions(funcs []string) string {
	if len(funcs) == 1 {
		return "function " + funcs[0]
	}
	return "functions " + strings.Join(funcs, ", ")
}

// leftBehind lists what teardown leaves of in: the triggers unless
// triggers removes them, and always the outbox table.
func (a *app) leftBehind(in outbox.Installed, triggers bool) []leftover {
	var left []leftover
	remove := fmt.Sprintf("`walhook teardown -c %s --triggers`", a.configFile())
	if !triggers && len(in.Capture) > 0 {
		name := captureTriggers(in)
		left = append(left, leftover{name, fmt.Sprintf("left %s: every change of these tables is still written into an outbox table, and nothing reads it once walhook is gone; remove them with %s (or `walhook triggers uninstall -c %s`)",
			name, remove, a.configFile())})
	}
	if !triggers && in.Notify != nil {
		name := fmt.Sprintf("trigger %s on %s", in.Notify.Name, in.Notify.Table)
		left = append(left, leftover{name, fmt.Sprintf("left %s (it runs %s()): remove it with %s", name, in.Notify.Function, remove)})
	}
	if in.OutboxExists {
		name := fmt.Sprintf("outbox table %s (%s)", in.Outbox, rowCount(in))
		how := "drop it yourself once nothing writes into it: " + in.DropOutboxSQL()
		if !triggers && len(in.Capture) > 0 {
			how = "drop it yourself after removing the capture triggers (they write into it, so writes to their tables fail without it): " + in.DropOutboxSQL()
		}
		left = append(left, leftover{name, fmt.Sprintf("left %s: it holds the application's events, so teardown never drops it; %s", name, how)})
	}
	return left
}

// leftNames lists the names of left.
func leftNames(left []leftover) []string {
	names := make([]string, len(left))
	for i, l := range left {
		names[i] = l.name
	}
	return names
}

// printLeft prints one line for each leftover.
func (a *app) printLeft(left []leftover) {
	for _, l := range left {
		fmt.Fprintln(a.stdout, l.line)
	}
}

// printRemoved says which triggers and functions teardown --triggers
// removed.
func (a *app) printRemoved(in outbox.Installed) {
	if len(in.Capture) == 0 && in.Notify == nil {
		fmt.Fprintln(a.stdout, "no walhook triggers to remove")
	}
	if len(in.Capture) > 0 {
		fmt.Fprintln(a.stdout, "removed "+captureTriggers(in))
	}
	if in.Notify != nil {
		fmt.Fprintf(a.stdout, "removed trigger %s on %s\n", in.Notify.Name, in.Notify.Table)
	}
	if funcs := triggerFunctions(in); len(funcs) > 0 {
		fmt.Fprintln(a.stdout, "dropped "+functions(funcs))
	}
}

// rowCount says how many rows the outbox table holds.
func rowCount(in outbox.Installed) string {
	switch {
	case in.Estimated:
		return fmt.Sprintf("about %d rows", in.Rows)
	case in.Rows == 1:
		return "1 row"
	}
	return fmt.Sprintf("%d rows", in.Rows)
}

// listJoin joins items as "a", "a and b", "a, b and c".
func listJoin(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}
