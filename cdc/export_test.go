package cdc

// ReaderTestSignals are a Reader's signals, for the tests of package cdc.
type ReaderTestSignals struct {
	// Streaming delivers the start position of every session that streams.
	Streaming <-chan LSN
	// Interrupted delivers the error that ended each session.
	Interrupted <-chan string
}

// InitTestSignals turns the reader's signals on; call it before Run.
func (r *Reader) InitTestSignals() ReaderTestSignals {
	r.testSignals.streaming.Init()
	r.testSignals.interrupted.Init()
	return ReaderTestSignals{Streaming: r.testSignals.streaming.C(), Interrupted: r.testSignals.interrupted.C()}
}

// SetPieceChanges sets after how many changes a piece of a large
// transaction ends.
func SetPieceChanges(cfg *ReaderConfig, n int) { cfg.pieceChanges = n }
