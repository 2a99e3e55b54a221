package outbox

import (
	"testing"

	"github.com/walhook/walhook/testenv"
)

// TestMain stops the shared test cluster and fails the run when a test
// leaves a goroutine running.
func TestMain(m *testing.M) { testenv.Main(m) }
