package backfill

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/rules"
	"github.com/walhook/walhook/internal/store"
)

// Request asks for a backfill.
type Request struct {
	// Table is "schema.table", or "table" in public.
	Table string `json:"table"`
	// Where is an SQL condition on the table's rows; empty for all.
	Where string `json:"where,omitempty"`
	// Event limits the backfill to one rule, which must read the table.
	Event string `json:"event,omitempty"`
	// Endpoint (an HCL endpoint's name) or Webhook (an API webhook's id)
	// limits delivery to that subscriber.
	Endpoint string `json:"endpoint,omitempty"`
	Webhook  string `json:"webhook,omitempty"`
	// Rate limits rows read per second; 0 for no limit.
	Rate int `json:"rate,omitempty"`
	// ChunkSize is the rows read per chunk; default DefaultChunkSize.
	ChunkSize int `json:"chunk_size,omitempty"`
	// IDSeed goes into the event ids; by default it is derived from table,
	// where, event and target, so the same backfill run twice sends the
	// same ids. Give a new one to send the rows under new ids.
	IDSeed string `json:"id_seed,omitempty"`
}

// InvalidError is a request that cannot run, with the reason for the user.
type InvalidError struct{ Reason string }

func (e *InvalidError) Error() string { return e.Reason }

func invalid(format string, args ...any) error {
	return &InvalidError{Reason: fmt.Sprintf(format, args...)}
}

// Subscriber is an endpoint as a backfill request may name it.
type Subscriber struct {
	ID     string // "cfg:<name>" or "ep_…"
	Name   string // an HCL endpoint's name; empty for API webhooks
	Events []string
}

// Submitter validates and stores backfill requests.
type Submitter struct {
	URL         string
	Store       *store.Store
	Events      []rules.EventInfo
	Subscribers func() []Subscriber
	// OnSubmit, when set, is called after a submission (Runner.Wake).
	OnSubmit func()
}

// Submit checks req against the config, the subscribers and the source
// database (the table exists and has a primary key, where runs) and stores
// it as a pending backfill. Errors a user can fix are *InvalidError.
func (s *Submitter) Submit(ctx context.Context, req Request) (store.Backfill, error) {
	b, err := s.check(ctx, req)
	if err != nil {
		return store.Backfill{}, err
	}
	b, err = s.Store.CreateBackfill(ctx, b)
	if err != nil {
		return store.Backfill{}, err
	}
	if s.OnSubmit != nil {
		s.OnSubmit()
	}
	return b, nil
}

func (s *Submitter) check(ctx context.Context, req Request) (store.Backfill, error) {
	if strings.TrimSpace(req.Table) == "" {
		return store.Backfill{}, invalid("table is required")
	}
	if req.Endpoint != "" && req.Webhook != "" {
		return store.Backfill{}, invalid("give endpoint or webhook, not both")
	}
	if req.Rate < 0 || req.ChunkSize < 0 || req.ChunkSize > maxChunkSize {
		return store.Backfill{}, invalid("rate must be 0 or more and chunk_size between 1 and %d", maxChunkSize)
	}
	tr, err := cdc.OpenTableReader(ctx, s.URL, req.Table, cdc.TableReadOptions{Where: req.Where})
	if err != nil {
		var pgErr interface{ SQLState() string }
		switch {
		case errors.Is(err, cdc.ErrNoTable):
			return store.Backfill{}, invalid("unknown table %s: no such table in the source database", req.Table)
		case permanent(err) || errors.As(err, &pgErr) || strings.Contains(err.Error(), "is not of the form"):
			return store.Backfill{}, invalid("%v", err)
		}
		return store.Backfill{}, err
	}
	defer tr.Close(ctx)
	// Run the count and the first chunk now, so that a clause that passes
	// the checks but fails when run is refused with the database's word
	// rather than accepted and failing later.
	total, exact, err := tr.Count(ctx)
	if err == nil {
		_, err = tr.Chunk(ctx, nil, newChunkSizer(req.ChunkSize, req.Rate).size)
	}
	if err != nil {
		if permanent(err) || timedOut(err) {
			return store.Backfill{}, invalid("%v", err)
		}
		return store.Backfill{}, fmt.Errorf("trying the backfill's first read: %w", err)
	}
	t := tr.Table()
	table := t.Schema + "." + t.Name

	var reads []string // events that read the table
	for _, ev := range s.Events {
		if ev.Table == table || (t.Schema == "public" && ev.Table == t.Name) {
			for _, op := range ev.Ops {
				if op == string(cdc.OpRead) {
					reads = append(reads, ev.Name)
				}
			}
		}
	}
	if req.Event != "" {
		found := false
		for _, ev := range s.Events {
			found = found || ev.Name == req.Event
		}
		if !found {
			return store.Backfill{}, invalid("unknown event %q: the config has no event block of that name", req.Event)
		}
		if !slices.Contains(reads, req.Event) {
			return store.Backfill{}, invalid("event %q does not read table %s: its block needs table = %q and \"read\" in on", req.Event, table, table)
		}
		reads = []string{req.Event}
	} else if len(reads) == 0 {
		return store.Backfill{}, invalid("no event reads table %s: add \"read\" to the on list of an event block of that table", table)
	}

	var endpointID string
	if req.Endpoint != "" || req.Webhook != "" {
		var sub *Subscriber
		for _, sb := range s.Subscribers() {
			if (req.Endpoint != "" && sb.Name == req.Endpoint && strings.HasPrefix(sb.ID, "cfg:")) || (req.Webhook != "" && sb.ID == req.Webhook) {
				sub = &sb
				break
			}
		}
		switch {
		case sub == nil && req.Endpoint != "":
			return store.Backfill{}, invalid("unknown endpoint %q: no endpoint block of that name", req.Endpoint)
		case sub == nil:
			return store.Backfill{}, invalid("unknown webhook %q: no active webhook with that id", req.Webhook)
		}
		wanted := false
		for _, ev := range reads {
			wanted = wanted || config.MatchAny(sub.Events, ev)
		}
		if !wanted {
			return store.Backfill{}, invalid("endpoint %s subscribes to none of the events the backfill makes (%s)", sub.ID, strings.Join(reads, ", "))
		}
		endpointID = sub.ID
	}

	seed := req.IDSeed
	if seed == "" {
		seed = DefaultIDSeed(table, req.Where, req.Event, endpointID)
	}
	switch dup, err := s.Store.UnfinishedBackfill(ctx, seed); {
	case err == nil:
		return store.Backfill{}, invalid("backfill %s sends the same rows under the same ids and is %s: follow it (walhook backfill --follow %s), cancel it first, or give another id_seed to send the rows again under new ids",
			dup.ID, dup.Status, dup.ID)
	case !errors.Is(err, store.ErrNotFound):
		return store.Backfill{}, err
	}
	return store.Backfill{
		Table: table, Where: strings.TrimSpace(req.Where), Event: req.Event, EndpointID: endpointID,
		IDSeed: seed, Rate: req.Rate, ChunkSize: req.ChunkSize, RowsTotal: &total, TotalExact: exact,
	}, nil
}

// DefaultIDSeed is the id seed of a backfill that names none: "bfs_" and
// the hex of the first 12 bytes of a SHA-256 over the table
// ("schema.table"), the trimmed where clause, the event and the target's
// id, joined by NUL bytes (docs/operations.md, "Event ids").
func DefaultIDSeed(table, where, event, endpointID string) string {
	sum := sha256.Sum256([]byte(strings.Join([]string{table, strings.TrimSpace(where), event, endpointID}, "\x00")))
	return "bfs_" + hex.EncodeToString(sum[:12])
}
