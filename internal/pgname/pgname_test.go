package pgname

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSplitTable(t *testing.T) {
	t.Parallel()
	for in, want := range map[string][2]string{
		"contacts":        {"public", "contacts"},
		"app.outbox":      {"app", "outbox"},
		"Odd Name.my tab": {"Odd Name", "my tab"},
	} {
		if s, tb, err := SplitTable(in); err != nil || s != want[0] || tb != want[1] {
			t.Errorf("SplitTable(%q) = %q, %q, %v", in, s, tb, err)
		}
	}
	for _, bad := range []string{"", ".t", "s.", "a.b.c"} {
		if _, _, err := SplitTable(bad); err == nil {
			t.Errorf("SplitTable(%q) accepted", bad)
		}
	}
}
