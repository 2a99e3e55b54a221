package main

import (
	"flag"
	"os"
	"time"

	"github.com/rs/zerolog"
)

type logOptions struct {
	format *string
	level  *string
}

// logFlags adds --log-format and --log-level to fs.
func logFlags(fs *flag.FlagSet) logOptions {
	return logOptions{
		format: fs.String("log-format", "json", `log format on stderr: "json" or "console" (for people)`),
		level:  fs.String("log-level", "info", "debug, info, warn or error (debug logs row data)"),
	}
}

// logger builds the process logger: JSON lines on stderr by default.
func (o logOptions) logger() zerolog.Logger {
	zerolog.TimeFieldFormat = time.RFC3339Nano
	var log zerolog.Logger
	if *o.format == "console" {
		fi, err := os.Stderr.Stat()
		tty := err == nil && fi.Mode()&os.ModeCharDevice != 0
		log = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: "15:04:05.000", NoColor: !tty})
	} else {
		log = zerolog.New(os.Stderr)
	}
	lvl, err := zerolog.ParseLevel(*o.level)
	if err != nil || *o.level == "" {
		lvl = zerolog.InfoLevel
	}
	return log.Level(lvl).With().Timestamp().Logger()
}
