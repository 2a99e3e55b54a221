package relay

import (
	"testing"

	"github.com/walhook/walhook/cdc"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	const tbl = "public.contacts"
	view := func(now uint32, published []uint32, names map[uint32]string) cdc.TablesView {
		v := cdc.TablesView{PublicationExists: true, Configured: map[string]uint32{tbl: now}, Published: map[uint32]bool{}, Names: names}
		for _, oid := range published {
			v.Published[oid] = true
		}
		return v
	}
	for _, c := range []struct {
		name            string
		known           uint32
		seen            bool
		tv              cdc.TablesView
		streaming, act  bool
		want            tableKind
		wantOld, wantNw uint32
		wantName        string
	}{
		{"captured", 10, true, view(10, []uint32{10}, nil), true, true, tableOK, 10, 10, ""},
		{"first seen published", 0, false, view(10, []uint32{10}, nil), false, true, tableOK, 0, 10, ""},
		{"before the first session", 0, false, view(10, nil, nil), false, true, tableLeft, 0, 10, ""},
		{"re-created", 10, true, view(11, nil, nil), true, true, tableRecreated, 10, 11, ""},
		{"re-created while another instance holds the slot", 10, true, view(11, nil, nil), false, false, tableLeft, 10, 11, ""},
		{"re-created and already back", 10, true, view(11, []uint32{11}, nil), true, true, tableReadded, 10, 11, ""},
		{"re-created and put back by the slot's holder", 10, true, view(11, []uint32{11}, nil), false, false, tableOK, 10, 11, ""},
		{"taken out of the publication", 10, true, view(10, nil, nil), true, true, tableUnpublished, 10, 10, ""},
		{"taken out before the first poll", 0, false, view(10, nil, nil), true, true, tableUnpublished, 0, 10, ""},
		{"renamed", 10, true, view(0, []uint32{10}, map[uint32]string{10: "public.people"}), true, true, tableRenamed, 10, 0, "public.people"},
		{"renamed, seen by a standby", 10, true, view(0, []uint32{10}, map[uint32]string{10: "public.people"}), false, false, tableRenamed, 10, 0, "public.people"},
		{"dropped", 10, true, view(0, nil, map[uint32]string{}), true, true, tableDropped, 10, 0, ""},
		{"missing", 0, false, view(0, nil, map[uint32]string{}), false, true, tableMissing, 0, 0, ""},
		{"renamed and a new one created", 10, true, view(11, []uint32{10}, map[uint32]string{10: "public.people"}), true, true, tableRecreated, 10, 11, "public.people"},
	} {
		f := classify(tbl, c.known, c.seen, c.tv, c.streaming, c.act)
		if f.kind != c.want || f.oldOID != c.wantOld || f.newOID != c.wantNw || f.oldName != c.wantName {
			t.Errorf("%s: %+v, want kind %d old %d new %d name %q", c.name, f, c.want, c.wantOld, c.wantNw, c.wantName)
		}
	}
}

func TestWhatHappened(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		f    finding
		want string
	}{
		{finding{table: "public.a", kind: tableRecreated, oldOID: 1, newOID: 2},
			"table public.a was dropped and re-created (oid 1, now 2), which left the new table out of publication p"},
		{finding{table: "public.a", kind: tableRecreated, oldOID: 1, newOID: 2, oldName: "public.b"},
			"table public.a was renamed to public.b and a new table created under its name (oid 1, now 2), which left the new table out of publication p"},
		{finding{table: "public.a", kind: tableUnpublished, oldOID: 2, newOID: 2},
			"table public.a (oid 2) was removed from publication p"},
	} {
		if got := whatHappened(c.f, "p"); got != c.want {
			t.Errorf("whatHappened(%+v) =\n%s\nwant\n%s", c.f, got, c.want)
		}
	}
}
