// Package logging builds the go-kit logger both binaries log with, from the
// Prometheus-style --log.level and --log.format flags, and the slog bridge that
// exporter-toolkit and promhttp need.
package logging

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	sloggokit "github.com/tjhop/slog-gokit"
)

// Flags holds the values of --log.level and --log.format.
type Flags struct {
	Level  string
	Format string
}

// AddFlags declares --log.level and --log.format on app.
func AddFlags(app *kingpin.Application) *Flags {
	f := &Flags{}
	app.Flag("log.level", "Only log messages with the given severity or above. One of: [debug, info, warn, error]").
		Default("info").EnumVar(&f.Level, "debug", "info", "warn", "error")
	app.Flag("log.format", "Output format of log messages. One of: [logfmt, json]").
		Default("logfmt").EnumVar(&f.Format, "logfmt", "json")
	return f
}

// New returns a logger writing to w at the flags' level and format, with a timestamp
// on every record.
func New(f *Flags, w io.Writer) log.Logger {
	w = log.NewSyncWriter(w)
	var logger log.Logger
	if f.Format == "json" {
		logger = log.NewJSONLogger(w)
	} else {
		logger = log.NewLogfmtLogger(w)
	}
	logger = level.NewFilter(logger, levelOption(f.Level))
	return log.With(logger, "ts", log.DefaultTimestampUTC)
}

func levelOption(name string) level.Option {
	switch name {
	case "debug":
		return level.AllowDebug()
	case "warn":
		return level.AllowWarn()
	case "error":
		return level.AllowError()
	}
	return level.AllowInfo()
}

// Slog hands logger to libraries that want *slog.Logger. Filtering stays with the
// go-kit logger, so the bridge passes every level through.
func Slog(logger log.Logger) *slog.Logger {
	return slog.New(untimed{sloggokit.NewGoKitHandler(logger, slog.LevelDebug)})
}

// untimed drops slog's own record time: the go-kit logger already stamps every line
// with ts, and a second timestamp under another key only confuses log parsers.
type untimed struct{ slog.Handler }

func (h untimed) Handle(ctx context.Context, r slog.Record) error {
	r.Time = time.Time{}
	return h.Handler.Handle(ctx, r)
}

func (h untimed) WithAttrs(attrs []slog.Attr) slog.Handler {
	return untimed{h.Handler.WithAttrs(attrs)}
}

func (h untimed) WithGroup(name string) slog.Handler {
	return untimed{h.Handler.WithGroup(name)}
}
