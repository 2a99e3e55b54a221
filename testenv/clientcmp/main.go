// Command clientcmp measures the client CPU per request of net/http and of
// fasthttp posting a 1 KB webhook-like body to a receiver in another process
// over loopback (docs/operations.md, "The one-event path"). It is its own
// module so that walhook does not depend on fasthttp:
//
//	cd testenv/clientcmp && go build -o /tmp/cc . && (/tmp/cc -mode serve &)
//	/tmp/cc -mode nethttp; /tmp/cc -mode fasthttp
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

func cpu() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func main() {
	mode := flag.String("mode", "nethttp", "nethttp, fasthttp or serve")
	url := flag.String("url", "http://127.0.0.1:18080/", "")
	n := flag.Int("n", 100000, "")
	c := flag.Int("c", 16, "")
	flag.Parse()
	if *mode == "serve" {
		http.ListenAndServe("127.0.0.1:18080", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.WriteHeader(204)
		}))
		return
	}
	body := bytes.Repeat([]byte("x"), 1000)
	var send func() error
	switch *mode {
	case "nethttp":
		tr := &http.Transport{MaxIdleConnsPerHost: 256}
		cl := &http.Client{Transport: tr}
		send = func() error {
			req, _ := http.NewRequest("POST", *url, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("webhook-id", "evt_0123456789abcdefghijklmnop")
			req.Header.Set("webhook-timestamp", "1733200000")
			req.Header.Set("webhook-signature", "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=")
			resp, err := cl.Do(req)
			if err != nil {
				return err
			}
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			return nil
		}
	case "fasthttp":
		cl := &fasthttp.Client{MaxConnsPerHost: 256}
		send = func() error {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI(*url)
			req.Header.SetMethod("POST")
			req.Header.SetContentType("application/json")
			req.Header.Set("webhook-id", "evt_0123456789abcdefghijklmnop")
			req.Header.Set("webhook-timestamp", "1733200000")
			req.Header.Set("webhook-signature", "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=")
			req.SetBodyRaw(body)
			return cl.Do(req, resp)
		}
	}
	start, c0 := time.Now(), cpu()
	var wg sync.WaitGroup
	per := *n / *c
	for range *c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range per {
				if err := send(); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
			}
		}()
	}
	wg.Wait()
	el, cu := time.Since(start), cpu()-c0
	fmt.Printf("%s: %d requests, %.0f req/s, client CPU %.1f µs/request\n", *mode, per**c, float64(per**c)/el.Seconds(), float64(cu.Microseconds())/float64(per**c))
}
