package cdc

import (
	"bufio"
	"io"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// The walsender sends every pgoutput message (begin, each row, commit) with
// a send of its own. Read as it arrives, that costs this process one read
// syscall and one scheduler wake-up per message, which on a small machine
// takes CPU from the walsender itself. So the streaming connection reads
// through a large buffer, and after a read that came back small it pauses
// briefly, letting a busy stream accumulate so the next read fetches many
// messages at once. An idle stream pays at most readPause of latency.
const (
	readBufferSize = 64 << 10
	smallRead      = 8 << 10
	readPause      = 500 * time.Microsecond
)

// pausingReader pauses before reading again after a small read (see
// above). It sits above TLS, so a read is measured in decrypted bytes.
type pausingReader struct {
	r         io.Reader
	lastSmall bool
}

func (p *pausingReader) Read(b []byte) (int, error) {
	if p.lastSmall {
		time.Sleep(readPause)
	}
	n, err := p.r.Read(b)
	p.lastSmall = n < smallRead
	return n, err
}

// batchReads makes cfg's connection read in batches.
func batchReads(cfg *pgconn.Config) {
	cfg.BuildFrontend = func(r io.Reader, w io.Writer) *pgproto3.Frontend {
		return pgproto3.NewFrontend(bufio.NewReaderSize(&pausingReader{r: r}, readBufferSize), w)
	}
}
