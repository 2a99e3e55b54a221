package rules

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/event"
)

func testEvent() *event.Event {
	return &event.Event{
		ID: "evt_0123", Type: "deal.stage.changed", Key: "9", Tenant: "7",
		Timestamp: time.Date(2026, 11, 23, 15, 5, 6, 123456000, time.FixedZone("CET", 3600)),
		Data:      json.RawMessage(`{"id":9,"amount":12345678901234567.89,"big":123456789012345678901234567890,"title":"a \"quoted\" <deal>"}`),
	}
}

func TestDefaultBody(t *testing.T) {
	t.Parallel()
	ep := &config.Endpoint{Name: "crm"}
	got, err := RenderBody(ep, testEvent())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"evt_0123","type":"deal.stage.changed","timestamp":"2026-11-23T14:05:06.123456Z","data":{"id":9,"amount":12345678901234567.89,"big":123456789012345678901234567890,"title":"a \"quoted\" <deal>"}}`
	if string(got) != want {
		t.Errorf("body =\n%s\nwant\n%s", got, want)
	}
	if !json.Valid(got) {
		t.Errorf("body is not valid JSON")
	}
	ev := testEvent()
	ev.Data = nil
	if got := string(DefaultBody(ev)); !strings.HasSuffix(got, `"data":null}`) {
		t.Errorf("body without data = %s", got)
	}
	// An event from a table says what happened to which table.
	ev.Op, ev.Table = "update", "public.deals"
	want = `{"id":"evt_0123","type":"deal.stage.changed","timestamp":"2026-11-23T14:05:06.123456Z","op":"update","table":"public.deals","data":null}`
	if got := string(DefaultBody(ev)); got != want {
		t.Errorf("body of a table event =\n%s\nwant\n%s", got, want)
	}
}

func TestCustomBody(t *testing.T) {
	t.Parallel()
	_, cfg := exampleRules(t)
	var legacy *config.Endpoint
	for _, ep := range cfg.Endpoints {
		if ep.Name == "legacy" {
			legacy = ep
		}
	}
	got, err := RenderBody(legacy, testEvent())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"event":"deal.stage.changed","timestamp":"2026-11-23T14:05:06.123456Z","data":{"amount":12345678901234567.89,"big":123456789012345678901234567890,"id":9,"title":"a \"quoted\" <deal>"}}`
	if string(got) != want {
		t.Errorf("body =\n%s\nwant\n%s", got, want)
	}
}

func TestCustomBodyVariables(t *testing.T) {
	t.Parallel()
	cfg, diags := config.Parse([]byte(`
source "postgres" { url = "postgres://x/y" }
event "a.b" {
  table = "t"
  on    = ["insert"]
}
endpoint "e" {
  url    = "https://example.com/hook"
  events = ["a.b"]
  secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
  body   = { id = event.id, key = event.key, tenant = event.tenant, amount = event.data.amount, n = [1, 2.5, true] }
}
endpoint "bad" {
  url    = "https://example.com/hook"
  events = ["a.b"]
  secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
  body   = { plan = event.data.plan }
}`), "body.hcl")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	got, err := RenderBody(cfg.Endpoints[0], testEvent())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"evt_0123","amount":12345678901234567.89,"key":"9","n":[1,2.5,true],"tenant":"7"}`
	if string(got) != want {
		t.Errorf("body =\n%s\nwant\n%s", got, want)
	}
	if _, err := RenderBody(cfg.Endpoints[1], testEvent()); err == nil || !strings.Contains(err.Error(), `"plan"`) {
		t.Errorf("body reading a missing field: err = %v", err)
	}
}

func TestJSONEncoding(t *testing.T) {
	t.Parallel()
	row := map[string]any{
		"s": "tab\there \u2028 \x01 \xff é", "f": 1.5, "n": json.Number("-0.000001"), "bad": json.Number("NaN"),
		"arr": []any{int64(1), nil, "x"}, "raw": json.RawMessage(`[1, {"a": 2}]`), "b": false,
	}
	got := appendRow(nil, row, []string{"s", "f", "n"})
	if !json.Valid(got) {
		t.Fatalf("invalid JSON: %s", got)
	}
	want := `{"s":"tab\there \u2028 \u0001 \ufffd é","f":1.5,"n":-0.000001,"arr":[1,null,"x"],"b":false,"bad":"NaN","raw":[1, {"a": 2}]}`
	if string(got) != want {
		t.Errorf("row =\n%s\nwant\n%s", got, want)
	}
}
