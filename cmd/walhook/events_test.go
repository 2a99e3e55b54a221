package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/walhook/walhook/testenv"
)

// TestEventsCommand lists the example config's events, prints the schema of
// one from the sample database, and checks its example validates against it.
func TestEventsCommand(t *testing.T) {
	db := testenv.NewDB(t)
	setExampleEnv(t, db.URL)
	code, out, errOut := walhook(context.Background(), "events", "-c", "../../config.example.hcl")
	if code != 0 {
		t.Fatalf("events: exit %d:\n%s", code, errOut)
	}
	if !strings.HasPrefix(out, "EVENT") || !strings.Contains(out, "deal.stage.changed") || !strings.Contains(out, "public.deals") {
		t.Errorf("events printed:\n%s", out)
	}

	code, out, errOut = walhook(context.Background(), "events", "-c", "../../config.example.hcl", "--schema", "deal.stage.changed")
	if code != 0 {
		t.Fatalf("events --schema: exit %d:\n%s", code, errOut)
	}
	var schema struct {
		Draft      string `json:"$schema"`
		Title      string `json:"title"`
		Properties struct {
			Data struct {
				Properties map[string]struct {
					PostgresType string `json:"x-postgres-type"`
				} `json:"properties"`
			} `json:"data"`
		} `json:"properties"`
	}
	if err := json.Unmarshal([]byte(out), &schema); err != nil {
		t.Fatalf("schema is not JSON: %v\n%s", err, out)
	}
	if schema.Draft != "https://json-schema.org/draft/2020-12/schema" || schema.Title != "deal.stage.changed" ||
		schema.Properties.Data.Properties["amount"].PostgresType != "numeric(12,2)" {
		t.Errorf("schema:\n%s", out)
	}
	code, example, errOut := walhook(context.Background(), "events", "-c", "../../config.example.hcl", "--schema", "deal.stage.changed", "--example")
	if code != 0 {
		t.Fatalf("events --example: exit %d:\n%s", code, errOut)
	}
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("s.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("s.json")
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(example)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(inst); err != nil {
		t.Errorf("example does not validate: %v\n%s", err, example)
	}

	code, _, errOut = walhook(context.Background(), "events", "-c", "../../config.example.hcl", "--schema", "no.such")
	if code != 2 || !strings.Contains(errOut, `no event "no.such"`) {
		t.Errorf("unknown event: exit %d:\n%s", code, errOut)
	}
}
