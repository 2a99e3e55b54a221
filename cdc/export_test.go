package cdc

import (
	"context"

	"github.com/jackc/pgx/v5"
)

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

// EnsurePublication is ensurePublication, for tests that need no slot.
func EnsurePublication(ctx context.Context, conn *pgx.Conn, cfg ReaderConfig) error {
	return ensurePublication(ctx, conn, cfg)
}

// StreamGap classifies a stream error as Reader.stream does.
func StreamGap(r *Reader, err error) error { return r.streamGap(err) }

// SetPieceChanges sets after how many changes a piece of a large
// transaction ends.
func SetPieceChanges(cfg *ReaderConfig, n int) { cfg.pieceChanges = n }

// DropSlot is dropSlot, for tests of what it leaves.
func DropSlot(ctx context.Context, conn *pgx.Conn, slot string) error {
	return dropSlot(ctx, conn, slot)
}
