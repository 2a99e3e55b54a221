package main

import (
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"
)

// logger builds the process logger from --log-format and --log-level:
// JSON lines on stderr by default.
func (a *app) logger() (zerolog.Logger, error) {
	return newLogger(a.stderr, a.logFormat, a.logLevel)
}

// newLogger builds a logger writing to w in format ("json" or "console")
// at level.
func newLogger(w io.Writer, format, level string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		return zerolog.Nop(), usageErrorf("--log-level %q: want debug, info, warn or error", level)
	}
	switch format {
	case "json":
	case "console":
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05.000", NoColor: !isTerminalWriter(w)}
	default:
		return zerolog.Nop(), usageErrorf(`--log-format %q: want "json" or "console"`, format)
	}
	zerolog.TimeFieldFormat = time.RFC3339Nano
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

// isTerminalWriter reports whether w is a terminal.
func isTerminalWriter(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isTerminal(f)
}
