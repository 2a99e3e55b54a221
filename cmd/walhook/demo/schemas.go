package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/eventschema"
	"github.com/walhook/walhook/internal/termstyle"
)

// describeSchemas prints, per event, the fields of its data as its JSON
// Schema types them, and where to get the whole schema.
func describeSchemas(ctx context.Context, p *printer, cfg *config.Config) error {
	p.printf("\n%s (JSON Schema 2020-12, derived from the tables and rules):\n", p.style(termstyle.Bold, "Event schemas"))
	catalog := eventschema.NewCatalog(cfg)
	for _, e := range cfg.Events {
		ev, err := catalog.Describe(ctx, e.Name)
		if err != nil {
			return fmt.Errorf("describing the events: %w", err)
		}
		p.printf("  %-20s %s\n", e.Name, fieldSummary(ev.Schema.Properties.Get("data"), 100))
	}
	if cfg.Admin != nil && len(cfg.Events) > 0 {
		p.printf("  whole schema and example: curl -sS -H \"Authorization: Bearer $WALHOOK_ADMIN_TOKEN\" http://%s/v1/events/%s\n", cfg.Admin.Listen, cfg.Events[0].Name)
	} else if len(cfg.Events) > 0 {
		p.printf("  whole schema: walhook events -c walhook.hcl --schema %s (or GET /v1/events/%s on the admin API, demo --admin)\n", cfg.Events[0].Name, cfg.Events[0].Name)
	}
	return nil
}

// fieldSummary is "id integer, amount number, ..." for an object schema,
// cut to about width characters.
func fieldSummary(s *eventschema.Schema, width int) string {
	if s == nil || s.Properties == nil {
		return typeSummary(s)
	}
	var parts []string
	for _, prop := range s.Properties {
		parts = append(parts, prop.Name+" "+typeSummary(prop.Schema))
	}
	out := strings.Join(parts, ", ")
	if len(out) > width {
		cut := strings.LastIndex(out[:width], ", ")
		if cut < 0 {
			cut = width
		}
		out = out[:cut] + ", …"
	}
	return out
}

// typeSummary is a short name of what s accepts: "integer", "string|null",
// "number|string", "any".
func typeSummary(s *eventschema.Schema) string {
	switch {
	case s == nil:
		return "any"
	case s.Const != nil:
		return string(s.Const)
	case s.AnyOf != nil:
		var names []string
		for _, o := range s.AnyOf {
			names = append(names, typeSummary(o))
		}
		return strings.Join(names, "|")
	case len(s.Type) > 0:
		t := strings.Join(s.Type, "|")
		if s.Format != "" {
			t = strings.Replace(t, "string", s.Format, 1)
		}
		return t
	}
	b, _ := json.Marshal(s)
	if string(b) == "{}" || strings.HasPrefix(string(b), `{"x-postgres-type"`) {
		return "any"
	}
	return "object"
}
