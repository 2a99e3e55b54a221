package relay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/eventschema"
	"github.com/walhook/walhook/testenv"
)

// bodyLog keeps the raw request bodies it receives, by endpoint path.
type bodyLog struct {
	mu     sync.Mutex
	bodies map[string][]string
	wake   chan struct{}
}

func (l *bodyLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	l.mu.Lock()
	l.bodies[r.URL.Path] = append(l.bodies[r.URL.Path], string(b))
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	w.WriteHeader(http.StatusNoContent)
}

// waitBodies waits for n bodies at path.
func (l *bodyLog) waitBodies(t *testing.T, path string, n int) []string {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		l.mu.Lock()
		got := append([]string(nil), l.bodies[path]...)
		l.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-l.wake:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatalf("%s received %d bodies of %d", path, len(got), n)
		}
	}
}

// TestNumbersExactFromPostgres inserts numeric, float8 and jsonb values
// beyond int64 and with many digits into a real table, and checks what the
// receiver gets: values passed through as Postgres wrote them, arithmetic
// exact (computed here with math/big), in plain notation, in data and in an
// endpoint body, each body valid against the schema walhook derives.
func TestNumbersExactFromPostgres(t *testing.T) {
	t.Parallel()
	db := testenv.NewEmptyDB(t)
	db.Exec(t, `create table nums (id bigint primary key, a numeric not null, b numeric(30,10) not null, f float8 not null, j jsonb not null)`)
	log := &bodyLog{bodies: map[string][]string{}, wake: make(chan struct{}, 1)}
	srv := serve(t, log)
	slot := testenv.Name(t, "slot")
	src := fmt.Sprintf(`
source "postgres" {
  url         = %q
  slot        = %q
  publication = %q
}
delivery {
  shutdown_timeout = "10s"
}
event "num.added" {
  table = "nums"
  on    = ["insert"]
  key   = new.id
  data  = {
    a      = new.a
    c      = coalesce(new.a, 0)
    a_plus = new.a + 1
    ab     = new.a * new.b
    lit    = 0.07 * 0.2
    f3     = new.f * 3
    jx     = new.j.x * 2
  }
}
endpoint "data" {
  url    = "%s/data"
  events = ["*"]
  secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
}
endpoint "body" {
  url    = "%s/body"
  events = ["*"]
  secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
  body   = { a = event.data.a, cents = event.data.a * 100, tenth = event.data.ab / 10 }
}
`, db.URL, slot, slot, srv.URL, srv.URL)
	h := runConfig(t, db, src)
	h.waitStreaming(t)

	rows := []struct{ a, b, f, jx string }{
		{"100000000000000000000", "0.2000000000", "0.1", "1e-30"},
		{"-100000000000000000000", "1.0001000000", "0.07", "12345678901234567890"},
		{"12345678901234567890.12345678901234567890", "-0.0000000001", "1e+20", "0.1000000000"},
		{"9223372036854775808", "3.0000000000", "-2.5", "-9223372036854775809"},
		{"0.07", "0.2000000000", "1e-10", "0"},
	}
	for i, r := range rows {
		db.Exec(t, fmt.Sprintf(`insert into nums values (%d, %s, %s, '%s', '{"x": %s}')`, i+1, r.a, r.b, r.f, r.jx))
	}
	dataBodies := log.waitBodies(t, "/data", len(rows))
	bodyBodies := log.waitBodies(t, "/body", len(rows))
	t.Logf("a data body: %s\na reshaped body: %s", dataBodies[0], bodyBodies[0])

	cfg, diags := config.Parse([]byte(src), "test.hcl")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	described, err := eventschema.NewCatalog(cfg).Describe(context.Background(), "num.added")
	if err != nil {
		t.Fatal(err)
	}
	dataSchema := compileSchema(t, described.Schema)
	bodySchema := compileSchema(t, described.Bodies[0].Schema)

	byKey := map[string]map[string]string{}
	for _, b := range dataBodies {
		if err := dataSchema.Validate(decodeInstance(t, b)); err != nil {
			t.Errorf("%s does not validate against the event's schema: %v", b, err)
		}
		var env struct {
			Data map[string]json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal([]byte(b), &env); err != nil {
			t.Fatal(err)
		}
		texts := map[string]string{}
		for k, v := range env.Data {
			texts[k] = string(v)
		}
		byKey[texts["a"]] = texts
	}
	rat := func(s string) *big.Rat {
		r, ok := new(big.Rat).SetString(s)
		if !ok {
			t.Fatalf("not a decimal: %q", s)
		}
		return r
	}
	// exact checks a received number: the value wanted, written without an
	// exponent.
	exact := func(what, got string, want *big.Rat) {
		t.Helper()
		if strings.ContainsAny(got, "eE") || rat(got).Cmp(want) != 0 {
			t.Errorf("%s = %s, want %s", what, got, want.FloatString(40))
		}
	}
	for _, r := range rows {
		d := byKey[r.a]
		if d == nil {
			t.Errorf("no event with a = %s (got %v)", r.a, byKey)
			continue
		}
		// Passed through: Postgres's own text.
		if d["c"] != r.a {
			t.Errorf("coalesce(new.a, 0) = %s, want %s", d["c"], r.a)
		}
		exact("a + 1", d["a_plus"], new(big.Rat).Add(rat(r.a), big.NewRat(1, 1)))
		exact("a * b", d["ab"], new(big.Rat).Mul(rat(r.a), rat(r.b)))
		exact("0.07 * 0.2", d["lit"], rat("0.014"))
		exact("f * 3", d["f3"], new(big.Rat).Mul(rat(r.f), big.NewRat(3, 1)))
		exact("j.x * 2", d["jx"], new(big.Rat).Mul(rat(r.jx), big.NewRat(2, 1)))
	}
	for _, b := range bodyBodies {
		if err := bodySchema.Validate(decodeInstance(t, b)); err != nil {
			t.Errorf("%s does not validate against the body's schema: %v", b, err)
		}
		var got map[string]json.RawMessage
		if err := json.Unmarshal([]byte(b), &got); err != nil {
			t.Fatal(err)
		}
		d := byKey[string(got["a"])]
		if d == nil {
			t.Errorf("body %s: no event with its a", b)
			continue
		}
		exact("a * 100", string(got["cents"]), new(big.Rat).Mul(rat(d["a"]), big.NewRat(100, 1)))
		exact("ab / 10", string(got["tenth"]), new(big.Rat).Quo(rat(d["ab"]), big.NewRat(10, 1)))
	}
}

func compileSchema(t *testing.T, s *eventschema.Schema) *jsonschema.Schema {
	t.Helper()
	raw, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("s.json", decodeInstance(t, string(raw))); err != nil {
		t.Fatal(err)
	}
	cs, err := c.Compile("s.json")
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// decodeInstance decodes JSON with exact numbers, as the validator wants.
func decodeInstance(t *testing.T, doc string) any {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(doc)))
	if err != nil {
		t.Fatal(err)
	}
	return v
}
