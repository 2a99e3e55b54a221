package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/eventschema"
)

func init() { register(newEventsCommand) }

func newEventsCommand(a *app) *cobra.Command {
	var schema, endpoint string
	var example bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "events",
		Short: "List the config's events, or print one event's JSON Schema",
		Long: `Lists the events the config's rules produce, and those its outbox block
declares (events = [...]). With --schema NAME it connects to source.url, reads
the rule's table from the catalog and prints the JSON Schema (2020-12) of what
endpoints receive for that event: the default body, or with --endpoint the body
an HCL endpoint's body expression makes. An outbox event's data is the row's
payload, described as any JSON object or array (no database is read). --example prints an
example payload built from the schema instead. The admin API serves the same at
GET /v1/events/{name}.`,
		Example: `  walhook events -c walhook.hcl
  walhook events -c walhook.hcl --schema deal.stage.changed
  walhook events -c walhook.hcl --schema deal.stage.changed --endpoint legacy --example`,
		Args:        noArgs,
		Annotations: readsConfig(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if schema == "" {
				if endpoint != "" || example {
					return usageErrorf("--endpoint and --example need --schema NAME")
				}
				return a.listEvents()
			}
			return a.printEventSchema(cmd.Context(), schema, endpoint, example, timeout)
		},
	}
	cmd.Flags().StringVar(&schema, "schema", "", "print the JSON Schema of event `NAME`")
	cmd.Flags().StringVar(&endpoint, "endpoint", "", "with --schema: the body of HCL endpoint `NAME` instead of the default body")
	cmd.Flags().BoolVar(&example, "example", false, "with --schema: print an example payload instead of the schema")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "deadline for reading the table from the database")
	return cmd
}

// listEvents prints the config's events as a table.
func (a *app) listEvents() error {
	cfg, err := a.config()
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "EVENT\tTABLE\tON\tDESCRIPTION")
	for _, e := range cfg.Events {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", e.Name, e.QualifiedTable(), strings.Join(e.Ops, ","), e.Description)
	}
	if o := cfg.Source.Outbox; o != nil {
		for _, name := range o.Events {
			desc := o.Description(name)
			if desc == "" {
				desc = "written by the application into the outbox table"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", name, o.Table, "(outbox)", desc)
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("printing the events: %w", err)
	}
	if names := cfg.EventNames(); len(names) > 0 {
		fmt.Fprintf(a.stderr, "Print an event's JSON Schema with: walhook events -c %s --schema %s\n", a.configFile(), names[0])
	}
	return nil
}

// printEventSchema prints the schema (or example) of event name's default
// body, or of endpoint's body.
func (a *app) printEventSchema(ctx context.Context, name, endpoint string, example bool, timeout time.Duration) error {
	cfg, err := a.config()
	if err != nil {
		return err
	}
	known := cfg.EventNames()
	if !slices.Contains(known, name) {
		return usageErrorf("no event %q in %s (events: %s)", name, a.configFile(), strings.Join(known, ", "))
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ev, err := eventschema.NewCatalog(cfg).Describe(ctx, name)
	if err != nil {
		return err
	}
	schema, ex := ev.Schema, ev.Example
	if endpoint != "" {
		found := false
		for _, b := range ev.Bodies {
			if b.Endpoint == endpoint {
				schema, ex, found = b.Schema, b.Example, true
			}
		}
		if !found && !endpointSendsDefault(cfg.Endpoints, endpoint, name) {
			return usageErrorf("no HCL endpoint %q receives event %s", endpoint, name)
		}
	}
	var v any = schema
	if example {
		v = ex
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("writing the schema: %w", err)
	}
	_, err = fmt.Fprintf(a.stdout, "%s\n", out)
	return err
}

// endpointSendsDefault reports whether HCL endpoint name receives event
// with the default body (it has no body expression).
func endpointSendsDefault(endpoints []*config.Endpoint, name, event string) bool {
	for _, ep := range endpoints {
		if ep.Name == name && ep.Matches(event) && ep.Body == nil {
			return true
		}
	}
	return false
}
