package event

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/walhook/walhook/cdc"
)

// Replay is what a stored failed evaluation keeps to be evaluated again:
// the change (rule and outbox failures) or the event (body failures), the
// event's type and id, and the endpoint it is limited to.
type Replay struct {
	EventType string
	EventID   string
	Endpoint  string
	Change    *cdc.Change
	Event     *Event
}

// replayDoc is Replay's JSON form. Values keep their Go types (see
// encodeValue), so the change decodes to the values the rule saw.
type replayDoc struct {
	Version   int        `json:"v"`
	EventType string     `json:"event_type,omitempty"`
	EventID   string     `json:"event_id,omitempty"`
	Endpoint  string     `json:"endpoint,omitempty"`
	Change    *changeDoc `json:"change,omitempty"`
	Event     *eventDoc  `json:"event,omitempty"`
}

type changeDoc struct {
	Schema     string          `json:"schema"`
	Table      string          `json:"table"`
	Op         cdc.Op          `json:"op"`
	New        json.RawMessage `json:"new,omitempty"`
	Old        json.RawMessage `json:"old,omitempty"`
	Unchanged  []string        `json:"unchanged,omitempty"`
	Columns    []string        `json:"columns,omitempty"`
	Key        []string        `json:"key,omitempty"`
	OldFull    bool            `json:"old_full,omitempty"`
	XID        uint32          `json:"xid"`
	CommitTime time.Time       `json:"commit_time"`
	CommitLSN  uint64          `json:"commit_lsn"`
	EndLSN     uint64          `json:"end_lsn"`
	Position   int             `json:"position"`
	Backfill   string          `json:"backfill,omitempty"`
}

type eventDoc struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	Key       string    `json:"key,omitempty"`
	Tenant    string    `json:"tenant,omitempty"`
	Timestamp time.Time `json:"timestamp"`
	Data      string    `json:"data"` // the exact bytes, as a string
	Endpoint  string    `json:"endpoint,omitempty"`
	Table     string    `json:"table,omitempty"`
	CommitLSN uint64    `json:"commit_lsn"`
	EndLSN    uint64    `json:"end_lsn"`
	Position  int       `json:"position"`
}

// HasReplay reports whether f keeps what a replay needs.
func (f *Failure) HasReplay() bool { return f.Change != nil || f.Event != nil }

// EncodeReplay returns what f keeps for a replay, as JSON; nil when it keeps
// nothing (HasReplay is false).
func EncodeReplay(f *Failure) ([]byte, error) {
	if !f.HasReplay() {
		return nil, nil
	}
	doc := replayDoc{Version: 1, EventType: f.EventType, EventID: f.EventID, Endpoint: f.Endpoint}
	if c := f.Change; c != nil {
		cd := &changeDoc{Schema: c.Schema, Table: c.Table, Op: c.Op, Unchanged: c.Unchanged, Columns: c.Columns,
			Key: c.Key, OldFull: c.OldFull, XID: c.XID, CommitTime: c.CommitTime, CommitLSN: uint64(c.CommitLSN),
			EndLSN: uint64(c.EndLSN), Position: c.Position, Backfill: c.Backfill}
		var err error
		if cd.New, err = encodeRow(c.New); err != nil {
			return nil, fmt.Errorf("encoding the new row: %w", err)
		}
		if cd.Old, err = encodeRow(c.Old); err != nil {
			return nil, fmt.Errorf("encoding the old row: %w", err)
		}
		doc.Change = cd
	}
	if ev := f.Event; ev != nil {
		doc.Event = &eventDoc{ID: ev.ID, Type: ev.Type, Key: ev.Key, Tenant: ev.Tenant, Timestamp: ev.Timestamp,
			Data: string(ev.Data), Endpoint: ev.Endpoint, Table: ev.Table, CommitLSN: uint64(ev.CommitLSN),
			EndLSN: uint64(ev.EndLSN), Position: ev.Position}
	}
	return json.Marshal(doc)
}

// DecodeReplay reads what EncodeReplay wrote.
func DecodeReplay(b []byte) (Replay, error) {
	var doc replayDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return Replay{}, fmt.Errorf("decoding a stored failed evaluation: %w", err)
	}
	if doc.Version != 1 {
		return Replay{}, fmt.Errorf("decoding a stored failed evaluation: unknown version %d", doc.Version)
	}
	r := Replay{EventType: doc.EventType, EventID: doc.EventID, Endpoint: doc.Endpoint}
	if cd := doc.Change; cd != nil {
		c := &cdc.Change{Schema: cd.Schema, Table: cd.Table, Op: cd.Op, Unchanged: cd.Unchanged, Columns: cd.Columns,
			Key: cd.Key, OldFull: cd.OldFull, XID: cd.XID, CommitTime: cd.CommitTime, CommitLSN: cdc.LSN(cd.CommitLSN),
			EndLSN: cdc.LSN(cd.EndLSN), Position: cd.Position, Backfill: cd.Backfill}
		var err error
		if c.New, err = decodeRow(cd.New); err != nil {
			return Replay{}, fmt.Errorf("decoding the new row: %w", err)
		}
		if c.Old, err = decodeRow(cd.Old); err != nil {
			return Replay{}, fmt.Errorf("decoding the old row: %w", err)
		}
		r.Change = c
	}
	if ed := doc.Event; ed != nil {
		r.Event = &Event{ID: ed.ID, Type: ed.Type, Key: ed.Key, Tenant: ed.Tenant, Timestamp: ed.Timestamp,
			Data: json.RawMessage(ed.Data), Endpoint: ed.Endpoint, Table: ed.Table, CommitLSN: cdc.LSN(ed.CommitLSN),
			EndLSN: cdc.LSN(ed.EndLSN), Position: ed.Position}
	}
	return r, nil
}

// encodeRow writes a row with its values tagged by Go type: null, strings
// and bools as themselves, numbers and JSON as {"int"|"uint"|"num"|"float"|
// "json": text}, arrays as arrays. A nil row is omitted. It appends by hand:
// a rule failing on every row of a large transaction encodes each of them.
func encodeRow(row map[string]any) (json.RawMessage, error) {
	if row == nil {
		return nil, nil
	}
	b := make([]byte, 0, 64*len(row))
	b = append(b, '{')
	first := true
	for k, v := range row {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendValue(b, v)
	}
	return append(b, '}'), nil
}

func appendValue(b []byte, v any) []byte {
	tagged := func(tag, text string) []byte {
		b = append(b, `{"`...)
		b = append(b, tag...)
		b = append(b, `":`...)
		b = appendJSONString(b, text)
		return append(b, '}')
	}
	switch x := v.(type) {
	case nil:
		return append(b, "null"...)
	case string:
		return appendJSONString(b, x)
	case bool:
		return strconv.AppendBool(b, x)
	case int64:
		return tagged("int", strconv.FormatInt(x, 10))
	case int:
		return tagged("int", strconv.Itoa(x))
	case int32:
		return tagged("int", strconv.FormatInt(int64(x), 10))
	case uint64:
		return tagged("uint", strconv.FormatUint(x, 10))
	case uint32:
		return tagged("uint", strconv.FormatUint(uint64(x), 10))
	case json.Number:
		return tagged("num", string(x))
	case float64:
		return tagged("float", strconv.FormatFloat(x, 'g', -1, 64))
	case json.RawMessage:
		return tagged("json", string(x))
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendValue(b, e)
		}
		return append(b, ']')
	case map[string]any:
		b = append(b, `{"obj":{`...)
		first := true
		for k, e := range x {
			if !first {
				b = append(b, ',')
			}
			first = false
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendValue(b, e)
		}
		return append(b, "}}"...)
	default:
		return appendJSONString(b, fmt.Sprint(x))
	}
}

// appendJSONString writes s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				switch c {
				case '\n':
					b = append(b, '\\', 'n')
				case '\r':
					b = append(b, '\\', 'r')
				case '\t':
					b = append(b, '\\', 't')
				default:
					b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
				}
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, "\\ufffd"...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

func decodeRow(raw json.RawMessage) (map[string]any, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, nil
	}
	for k, v := range m {
		dv, err := decodeValue(v)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", k, err)
		}
		m[k] = dv
	}
	return m, nil
}

func decodeValue(v any) (any, error) {
	switch x := v.(type) {
	case nil, string, bool:
		return x, nil
	case []any:
		for i, e := range x {
			d, err := decodeValue(e)
			if err != nil {
				return nil, err
			}
			x[i] = d
		}
		return x, nil
	case map[string]any:
		if len(x) != 1 {
			return nil, fmt.Errorf("a tagged value has %d tags", len(x))
		}
		for tag, tv := range x {
			if tag == "obj" {
				m, ok := tv.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("obj is not an object")
				}
				for k, e := range m {
					d, err := decodeValue(e)
					if err != nil {
						return nil, err
					}
					m[k] = d
				}
				return m, nil
			}
			s, ok := tv.(string)
			if !ok {
				return nil, fmt.Errorf("tag %s does not hold text", tag)
			}
			switch tag {
			case "int":
				return strconv.ParseInt(s, 10, 64)
			case "uint":
				return strconv.ParseUint(s, 10, 64)
			case "num":
				return json.Number(s), nil
			case "float":
				return strconv.ParseFloat(s, 64)
			case "json":
				return json.RawMessage(s), nil
			}
			return nil, fmt.Errorf("unknown tag %q", tag)
		}
	}
	return nil, fmt.Errorf("unexpected %T", v)
}
