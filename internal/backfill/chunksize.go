package backfill

import "time"

// Chunk sizing. A chunk's rows enter the dispatcher together, at its high
// watermark, and live events that follow wait behind them; so the runner
// sizes chunks to what the endpoints deliver in about chunkTarget.
const (
	chunkTarget  = 15 * time.Millisecond
	minChunkSize = 50
	// firstChunkSize is where sizing starts, before any chunk was timed.
	firstChunkSize = 500
)

// chunkSizer picks the size of the next chunk from how fast the previous
// ones were settled: between minChunkSize and the backfill's chunk size
// (DefaultChunkSize when it gave none), so that one chunk takes about
// chunkTarget to deliver. With a rate, a chunk is at most its burst
// (rateBurst).
type chunkSizer struct {
	size, max int
	// perRow is how long a row took from its chunk's high watermark to
	// being settled, smoothed; zero until a chunk was timed.
	perRow time.Duration
}

func newChunkSizer(chunkSize, rate int) *chunkSizer {
	limit := chunkSize
	if limit <= 0 {
		limit = DefaultChunkSize
	}
	limit = min(limit, maxChunkSize)
	if rate > 0 {
		limit = min(limit, rateBurst(rate))
	}
	return &chunkSizer{size: min(limit, firstChunkSize), max: limit}
}

// settled adjusts the size after a chunk of rows took took from its high
// watermark to being settled. Growth is at most double per chunk, so a
// burst of speed does not let a huge chunk through.
func (c *chunkSizer) settled(rows int, took time.Duration) {
	if rows == 0 || took <= 0 {
		return
	}
	c.perRow = smooth(c.perRow, took/time.Duration(rows))
	fit := int(float64(rows) * float64(chunkTarget) / float64(took))
	c.size = min(max(fit, minChunkSize, 1), 2*c.size, c.max)
}

// expected is how long a chunk of rows should take to settle, from the
// chunks timed so far; false before any was.
func (c *chunkSizer) expected(rows int) (time.Duration, bool) {
	return time.Duration(rows) * c.perRow, c.perRow > 0
}
