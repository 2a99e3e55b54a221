package cdc

import (
	"errors"
	"strings"
	"testing"
)

// TestJudgeSlot covers every state a session start can find, including
// those a shared test cluster cannot produce (another server).
func TestJudgeSlot(t *testing.T) {
	t.Parallel()
	ours := SlotStatus{Name: "wh", Exists: true, Type: "logical", Database: "app", Plugin: "pgoutput", ConfirmedLSN: "0/100", WALStatus: "reserved"}
	rec := &SlotRecord{Slot: "wh", Database: "app", SystemID: "7301", Confirmed: 0x100}
	with := func(f func(*slotFacts)) slotFacts {
		r := *rec
		s := slotFacts{slot: "wh", publication: "pub", systemID: "7301", database: "app", status: ours, pubExists: true, rec: &r, ownPosition: true}
		f(&s)
		return s
	}
	for _, c := range []struct {
		name    string
		facts   slotFacts
		verdict slotVerdict
		gap     string // the error's reason ("" for none)
		prereq  string
	}{
		{"recorded and unchanged", with(func(*slotFacts) {}), slotKeep, "", ""},
		{"behind the record (recorded, not yet confirmed)", with(func(f *slotFacts) { f.status.ConfirmedLSN = "0/80" }), slotKeep, "", ""},
		{"no record, no slot", with(func(f *slotFacts) { f.rec, f.status = nil, SlotStatus{Name: "wh"} }), slotCreate, "", ""},
		{"no record, slot present", with(func(f *slotFacts) { f.rec = nil }), slotAdopt, "", ""},
		{"no record, slot of another database", with(func(f *slotFacts) { f.rec, f.status.Database = nil, "other" }), 0, "", `belongs to database "other", not "app"`},
		{"no record, slot invalidated", with(func(f *slotFacts) { f.rec, f.status.WALStatus = nil, "lost" }), 0, "wal_status lost", ""},
		{"no record, publication missing", with(func(f *slotFacts) { f.rec, f.pubExists = nil, false }), 0, "publication pub does not exist", ""},
		{"another server", with(func(f *slotFacts) { f.systemID = "9999" }), 0, "system identifier 7301, but source.url now reaches system 9999", ""},
		{"another database", with(func(f *slotFacts) { f.database, f.status.Database = "other", "other" }), 0, `recorded it in database "app", but source.url now connects to database "other"`, ""},
		{"slot missing", with(func(f *slotFacts) { f.status = SlotStatus{Name: "wh"} }), 0, "the slot does not exist any more", ""},
		{"slot now another database's", with(func(f *slotFacts) { f.status.Database = "other" }), 0, `a slot of that name now belongs to database "other"`, ""},
		{"re-created with another plugin", with(func(f *slotFacts) { f.status.Plugin = "wal2json" }), 0, `re-created with plugin "wal2json"`, ""},
		{"invalidated", with(func(f *slotFacts) { f.status.WALStatus = "lost" }), 0, "wal_status lost", ""},
		{"ahead of the record", with(func(f *slotFacts) { f.status.ConfirmedLSN = "0/200" }), 0, "confirmed position 0/200 is ahead of 0/100", ""},
		{"ahead of a memory record", with(func(f *slotFacts) { f.status.ConfirmedLSN, f.ownPosition = "0/200", false }), slotKeep, "", ""},
		{"publication missing", with(func(f *slotFacts) { f.pubExists = false }), 0, "publication pub does not exist", ""},
	} {
		v, err := judgeSlot(c.facts)
		var gap *GapError
		switch {
		case c.gap != "":
			if !errors.As(err, &gap) || !errors.Is(err, ErrGap) || !strings.Contains(gap.Reason, c.gap) {
				t.Errorf("%s: %v, want a gap with %q", c.name, err, c.gap)
			}
		case c.prereq != "":
			if !errors.Is(err, ErrPrerequisite) || !strings.Contains(err.Error(), c.prereq) {
				t.Errorf("%s: %v, want a prerequisite error with %q", c.name, err, c.prereq)
			}
		case err != nil || v != c.verdict:
			t.Errorf("%s: %v, %v; want verdict %v", c.name, v, err, c.verdict)
		}
	}
}
