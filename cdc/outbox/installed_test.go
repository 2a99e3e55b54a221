package outbox

import (
	"context"
	"fmt"
	"slices"
	"testing"
)

// TestFindInstalled follows what walhook installed in a real database:
// capture triggers on the rules' tables and on another table writing into
// the outbox, a user trigger sharing the capture function (which then
// stays), the NOTIFY trigger, the row count; DropSQL removes the triggers
// and leaves the outbox table and the application's writes working.
func TestFindInstalled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, conn := outboxDB(t, "contacts", "deals", "notes")
	install, err := TriggersSQL("app.outbox", []string{"public.contacts", "public.deals", "public.notes"})
	if err != nil {
		t.Fatal(err)
	}
	db.Exec(t, install)
	db.Exec(t, `INSERT INTO contacts VALUES (1), (2)`)
	db.Exec(t, `CREATE TRIGGER audit AFTER INSERT ON deals FOR EACH ROW EXECUTE FUNCTION app.outbox_capture()`)
	rules := []string{"public.contacts", "public.deals", "public.gone"}
	find := func(outbox string) Installed {
		t.Helper()
		in, err := FindInstalled(ctx, conn, outbox, rules)
		if err != nil {
			t.Fatal(err)
		}
		return in
	}

	in := find("app.outbox")
	var got []string
	for _, tr := range in.Capture {
		got = append(got, fmt.Sprintf("%s %s %s", tr.Table, tr.Name, tr.Function))
	}
	want := []string{
		`public.contacts walhook_capture "app"."outbox_capture"`, `public.contacts walhook_capture_truncate "app"."outbox_capture"`,
		`public.deals walhook_capture "app"."outbox_capture"`, `public.deals walhook_capture_truncate "app"."outbox_capture"`,
		`public.notes walhook_capture "app"."outbox_capture"`, `public.notes walhook_capture_truncate "app"."outbox_capture"`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("capture triggers:\n%q\nwant\n%q", got, want)
	}
	if !in.OutboxExists || in.Rows != 2 || in.Estimated {
		t.Errorf("outbox table: exists %v, %d rows (estimated %v); want 2 captured changes", in.OutboxExists, in.Rows, in.Estimated)
	}
	if in.Notify == nil || in.Notify.Name != "walhook_notify" || in.Notify.Table != "app.outbox" || in.Notify.Function != `"app"."outbox_notify"` {
		t.Errorf("notify trigger: %+v", in.Notify)
	}
	if len(in.CaptureFunctions()) != 0 {
		t.Errorf("capture functions to drop %v; want none, the trigger audit runs it", in.CaptureFunctions())
	}
	if !slices.Equal(in.NotifyFunctions(), []string{`"app"."outbox_notify"`}) {
		t.Errorf("notify functions to drop %v", in.NotifyFunctions())
	}
	if got := in.DropOutboxSQL(); got != `DROP TABLE "app"."outbox";` {
		t.Errorf("DropOutboxSQL() = %q", got)
	}

	db.Exec(t, in.DropSQL(false)) // the capture triggers only; the function stays for audit
	in = find("app.outbox")
	if len(in.Capture) != 0 || in.Notify == nil || len(in.CaptureFunctions()) != 0 {
		t.Fatalf("after DropSQL(false): capture %v, notify %v, capture functions %v", in.Capture, in.Notify, in.CaptureFunctions())
	}
	db.Exec(t, `DROP TRIGGER audit ON deals`)
	in = find("app.outbox")
	if !slices.Equal(in.CaptureFunctions(), []string{`"app"."outbox_capture"`}) {
		t.Errorf("capture function nothing runs: %v, want it dropped", in.CaptureFunctions())
	}
	db.Exec(t, in.DropSQL(true))
	in = find("app.outbox")
	if len(in.Capture) != 0 || in.Notify != nil || len(in.CaptureFunctions())+len(in.NotifyFunctions()) != 0 || !in.OutboxExists || in.Rows != 2 {
		t.Fatalf("after DropSQL(true): %+v", in)
	}
	var fns int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_proc WHERE pronamespace = 'app'::regnamespace`).Scan(&fns); err != nil || fns != 0 {
		t.Errorf("%d functions left in schema app (%v)", fns, err)
	}
	db.Exec(t, `INSERT INTO contacts VALUES (3); UPDATE deals SET id = id; DELETE FROM notes; INSERT INTO app.outbox (event_type, payload) VALUES ('x', '{}')`)

	// Without an outbox table: a capture trigger of another outbox on a
	// rule's table is still found, with its function.
	other, err := TriggersSQL("app.other", []string{"public.contacts"})
	if err != nil {
		t.Fatal(err)
	}
	db.Exec(t, `CREATE TABLE app.other (id bigserial PRIMARY KEY, event_type text, payload jsonb)`)
	db.Exec(t, other)
	in = find("")
	if len(in.Capture) != 2 || in.Capture[0].Function != `"app"."other_capture"` || in.OutboxExists || !slices.Equal(in.CaptureFunctions(), []string{`"app"."other_capture"`}) {
		t.Errorf("without an outbox table: %+v", in)
	}
}
