package sender

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Receivers in other languages, each in its own process, answering the
// ways their frameworks do by default: Node's http module (chunked bodies
// when the length is not known up front, a keep-alive timeout that closes
// idle connections) and Python's http.server (HTTP/1.0: a connection per
// request, the body ending when the server closes). Each answer carries
// the server's request count, so a request sent twice shows as a gap.

const nodeReceiver = `
const http = require('http');
let count = 0;
const srv = http.createServer((req, res) => {
  let n = 0;
  req.on('data', (c) => { n += c.length; });
  req.on('end', () => {
    count++;
    if (req.url === '/chunked') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write('{"count":' + count);
      res.end(',"bytes":' + n + '}');
    } else if (req.url === '/empty') {
      res.writeHead(204, { 'X-Count': String(count) });
      res.end();
    } else {
      res.end(JSON.stringify({ count, bytes: n }));
    }
  });
});
srv.keepAliveTimeout = 200;
srv.listen(0, '127.0.0.1', () => console.log(srv.address().port));
`

const pythonReceiver = `
import http.server, sys
count = 0
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = sys.argv[1]
    def do_POST(self):
        global count
        n = len(self.rfile.read(int(self.headers['Content-Length'])))
        count += 1
        body = ('{"count":%d,"bytes":%d}' % (count, n)).encode()
        self.send_response(200)
        if self.protocol_version == 'HTTP/1.1':
            self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
s = http.server.HTTPServer(('127.0.0.1', 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
`

// runReceiver starts a receiver process that prints its port, and returns
// its base URL; it skips the test when the interpreter is missing.
func runReceiver(t *testing.T, interpreter string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath(interpreter)
	if err != nil {
		t.Skipf("%s is not installed", interpreter)
	}
	cmd := exec.Command(path, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("%s printed no port: %v", interpreter, err)
	}
	return "http://127.0.0.1:" + strings.TrimSpace(line)
}

func TestInteropReceivers(t *testing.T) {
	t.Parallel()
	type step struct {
		path  string
		pause time.Duration // before the request
	}
	// A pause past Node's keep-alive timeout (200 ms, which Node 20 keeps
	// for a second more): the server has closed the kept connection, and
	// the client sees it before using it.
	pause := 1500 * time.Millisecond
	steps := []step{{"/", 0}, {"/chunked", 0}, {"/empty", 0}, {"/", pause}, {"/chunked", 0}, {"/chunked", pause}, {"/", 0}}
	// Connections each receiver should take for the steps: a new one after
	// each of Node's closes, one per request for HTTP/1.0.
	wantConns := map[string]int64{"node": 3, "python http/1.0": int64(len(steps)), "python http/1.1": 1}
	receivers := map[string]func(t *testing.T) string{
		"node": func(t *testing.T) string { return runReceiver(t, "node", "-e", nodeReceiver) },
		"python http/1.0": func(t *testing.T) string {
			return runReceiver(t, "python3", "-c", pythonReceiver, "HTTP/1.0")
		},
		"python http/1.1": func(t *testing.T) string {
			return runReceiver(t, "python3", "-c", pythonReceiver, "HTTP/1.1")
		},
	}
	for name, start := range receivers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			base := start(t)
			c := newClient(t, Options{})
			var conns atomic.Int64
			dial := c.h1.dial
			c.h1.dial = func(ctx context.Context, d *net.Dialer, addr string) (net.Conn, error) {
				conns.Add(1)
				return dial(ctx, d, addr)
			}
			body := []byte(`{"type":"contact.created","data":{"id":1}}`)
			for i, s := range steps {
				time.Sleep(s.pause)
				path := s.path
				if !strings.HasPrefix(name, "node") {
					path = "/"
				}
				res := c.Send(context.Background(), Request{URL: base + path, Body: body, Timeout: 5 * time.Second})
				if !res.OK() {
					t.Fatalf("request %d (%s): %+v %q", i, path, res, res.ErrorText())
				}
				if path == "/empty" {
					continue
				}
				want := fmt.Sprintf(`{"count":%d,"bytes":%d}`, i+1, len(body))
				if string(res.Response) != want || res.Truncated {
					t.Fatalf("request %d (%s): answer %q, want %q (a request sent twice shows as a higher count)", i, path, res.Response, want)
				}
			}
			if n := conns.Load(); n != wantConns[name] {
				t.Errorf("%d connections, want %d", n, wantConns[name])
			}
		})
	}
}
