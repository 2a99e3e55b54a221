package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"os"

	"github.com/rs/zerolog"
)

// envPprof names the variable that, set to an address (127.0.0.1:6060),
// makes `walhook run` serve Go's profiler there, for finding where the
// time goes (docs/operations.md, "Measuring throughput").
const envPprof = "WALHOOK_PPROF_ADDR"

// startPprof serves /debug/pprof/ on $WALHOOK_PPROF_ADDR until ctx ends;
// it does nothing when the variable is unset. The returned function waits
// for the server to stop.
func startPprof(ctx context.Context, log zerolog.Logger) (wait func()) {
	addr := os.Getenv(envPprof)
	if addr == "" {
		return func() {}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Warn().Err(err).Str("addr", addr).Msg("not serving pprof")
		return func() {}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	srv := &http.Server{Handler: mux}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn().Err(err).Msg("pprof server stopped")
		}
	}()
	stopped := context.AfterFunc(ctx, func() { _ = srv.Close() })
	log.Info().Str("addr", ln.Addr().String()).Msg("serving pprof")
	return func() {
		if stopped() {
			_ = srv.Close()
		}
		<-done
	}
}
