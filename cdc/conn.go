package cdc

import (
	"bufio"
	"context"
	"io"
	"net"
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

// batchingConn is a net.Conn that pauses before reading again after a
// small read (see above).
type batchingConn struct {
	net.Conn
	lastSmall bool
}

func (c *batchingConn) Read(p []byte) (int, error) {
	if c.lastSmall {
		time.Sleep(readPause)
	}
	n, err := c.Conn.Read(p)
	c.lastSmall = n < smallRead
	return n, err
}

// batchReads makes cfg's connections read in batches.
func batchReads(cfg *pgconn.Config) {
	dial := cfg.DialFunc
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &batchingConn{Conn: conn}, nil
	}
	cfg.BuildFrontend = func(r io.Reader, w io.Writer) *pgproto3.Frontend {
		return pgproto3.NewFrontend(bufio.NewReaderSize(r, readBufferSize), w)
	}
}
