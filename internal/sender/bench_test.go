package sender

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"
)

// rawServer answers every HTTP/1.1 request with 204 and allocates almost
// nothing, so a benchmark's allocations and time are the client's.
func rawServer(b *testing.B) string {
	b.Helper()
	return scriptServer(b, answer("HTTP/1.1 204 No Content\r\n\r\n", true)).url
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
