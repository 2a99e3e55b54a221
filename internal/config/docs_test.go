package config

import (
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/gohcl"
)

// documentedBlocks maps each block docs/config.md documents to the struct
// the decoder decodes it into.
var documentedBlocks = map[string]any{
	"source": &sourceBlock{}, "outbox": &outboxBlock{}, "state": &stateBlock{}, "admin": &adminBlock{},
	"delivery": &deliveryBlock{}, "event": &eventBlock{}, "endpoint": &endpointBlock{}, "retry": &retryBlock{},
	"batch": &batchBlock{},
}

var (
	blockMarker = regexp.MustCompile(`^<!-- block: (\w+) -->$`)
	attrRow     = regexp.MustCompile("^\\| `(\\w+)` \\| [^|]+ \\| (yes|no) \\|")
	backticked  = regexp.MustCompile("`(\\w+)`")
)

func readDocs(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	src, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "docs", "config.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(src)
}

// TestDocsMatchDecoder checks that docs/config.md's attribute tables list
// exactly the attributes, required flags and nested blocks the decoder has.
func TestDocsMatchDecoder(t *testing.T) {
	t.Parallel()
	docs := readDocs(t)
	type doc struct {
		attrs  map[string]bool // name -> required
		tables int
	}
	found := map[string]*doc{}
	var cur *doc
	inAttrTable := false
	for _, line := range strings.Split(docs, "\n") {
		if m := blockMarker.FindStringSubmatch(line); m != nil {
			cur = &doc{attrs: map[string]bool{}}
			found[m[1]] = cur
			continue
		}
		if cur == nil {
			continue
		}
		switch {
		case strings.HasPrefix(line, "| attribute |"):
			inAttrTable = true
			cur.tables++
		case !strings.HasPrefix(line, "|"):
			inAttrTable = false
		case inAttrTable:
			if m := attrRow.FindStringSubmatch(line); m != nil {
				cur.attrs[m[1]] = m[2] == "yes"
			} else if !strings.HasPrefix(line, "| ---") {
				t.Errorf("cannot read table row %q", line)
			}
		}
	}
	for name, v := range documentedBlocks {
		d := found[name]
		if d == nil {
			t.Errorf("block %s is not documented", name)
			continue
		}
		schema, _ := gohcl.ImpliedBodySchema(v)
		for _, a := range schema.Attributes {
			req, ok := d.attrs[a.Name]
			switch {
			case !ok:
				t.Errorf("%s.%s is not documented", name, a.Name)
			case req != a.Required:
				t.Errorf("%s.%s: docs say required=%v, decoder %v", name, a.Name, req, a.Required)
			}
			delete(d.attrs, a.Name)
		}
		for extra := range d.attrs {
			t.Errorf("%s.%s is documented but the decoder has no such attribute", name, extra)
		}
		for _, b := range schema.Blocks {
			if _, ok := documentedBlocks[b.Type]; !ok {
				t.Errorf("nested block %s of %s is not documented", b.Type, name)
			}
		}
	}
	for name := range found {
		if _, ok := documentedBlocks[name]; !ok {
			t.Errorf("docs describe block %s that the decoder does not know", name)
		}
	}
	top, _ := gohcl.ImpliedBodySchema(&fileBlock{})
	for _, b := range top.Blocks {
		if _, ok := documentedBlocks[b.Type]; !ok {
			t.Errorf("top-level block %s is not documented", b.Type)
		}
	}
}

// TestDocsListFunctions checks the documented function list against the
// functions expressions can call.
func TestDocsListFunctions(t *testing.T) {
	t.Parallel()
	docs := readDocs(t)
	start := strings.Index(docs, "**Functions**")
	end := strings.Index(docs, "An unknown function")
	if start < 0 || end < start {
		t.Fatal("no function list in docs/config.md")
	}
	var documented []string
	for _, m := range backticked.FindAllStringSubmatch(docs[start:end], -1) {
		documented = append(documented, m[1])
	}
	sort.Strings(documented)
	if got, want := strings.Join(documented, " "), strings.Join(FunctionNames(), " "); got != want {
		t.Errorf("documented functions:\n%s\ndecoder:\n%s", got, want)
	}
}
