package termstyle

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestApply(t *testing.T) {
	t.Parallel()
	if got := Apply(false, Bold, "x"); got != "x" {
		t.Errorf("off: %q", got)
	}
	if got := Apply(true, Bold+Cyan, "x"); got != "\x1b[1m\x1b[36mx\x1b[0m" {
		t.Errorf("on: %q", got)
	}
}
