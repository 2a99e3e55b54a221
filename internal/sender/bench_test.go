package sender

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// rawServer answers every HTTP/1.1 request with 204 and allocates almost
// nothing, so a benchmark's allocations and time are the client's.
func rawServer(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	conns := make(chan net.Conn, 64)
	b.Cleanup(func() {
		ln.Close()
		close(conns)
		for c := range conns {
			c.Close()
		}
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns <- c
			wg.Go(func() { serveRaw(c) })
		}
	})
	return "http://" + ln.Addr().String() + "/hook"
}

func serveRaw(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	resp := []byte("HTTP/1.1 204 No Content\r\n\r\n")
	for {
		n := int64(0)
		for {
			line, err := r.ReadSlice('\n')
			if err != nil {
				return
			}
			if len(line) <= 2 {
				break
			}
			if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
				n, _ = strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
			}
		}
		if _, err := r.Discard(int(n)); err != nil {
			return
		}
		if _, err := c.Write(resp); err != nil {
			return
		}
	}
}

// BenchmarkSendClient measures the client's side of one attempt (the
// server allocates nothing): allocations and time per request.
func BenchmarkSendClient(b *testing.B) {
	url := rawServer(b)
	c := New(Options{})
	defer c.Close()
	body := bytes.Repeat([]byte("x"), 400)
	b.ReportAllocs()
	for b.Loop() {
		h := http.Header{"Webhook-Id": {"evt_1"}, "Webhook-Timestamp": {"1700000000"}, "Webhook-Signature": {"v1,abc"}}
		if res := c.Send(context.Background(), Request{URL: url, Header: h, Body: body, Timeout: 15 * time.Second}); !res.OK() {
			b.Fatal(res.ErrorText())
		}
	}
}
