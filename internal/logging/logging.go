package logging

import (
	"bytes"
	"context"
	"encoding"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
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

// New returns a logger writing to w at the flags' level and format. Every line has the
// same shape, whoever wrote it (this project or a library through Slog): ts, level and
// msg first, then the rest, one timestamp, no caller.
func New(f *Flags, w io.Writer) log.Logger {
	w = log.NewSyncWriter(w)
	var logger log.Logger
	if f.Format == "json" {
		// go-kit's JSON logger writes a map, so its keys come out sorted: ts, level
		// and msg would not lead.
		logger = jsonLogger{w}
	} else {
		logger = log.NewLogfmtLogger(w)
	}
	logger = level.NewFilter(ordered{logger}, levelOption(f.Level))
	return log.With(logger, "ts", log.DefaultTimestampUTC)
}

// leadingKeys come first on every line, in this order.
var leadingKeys = []string{"ts", "level", "msg"}

// ordered puts the leading keys first: go-kit puts a level added by level.Info before
// the timestamp, and slog's bridge after it.
type ordered struct{ next log.Logger }

func (o ordered) Log(keyvals ...any) error {
	out := make([]any, 0, len(keyvals))
	for _, key := range leadingKeys {
		for i := 0; i+1 < len(keyvals); i += 2 {
			if k, ok := keyvals[i].(string); ok && k == key {
				out = append(out, keyvals[i], keyvals[i+1])
				break
			}
		}
	}
	for i := 0; i < len(keyvals); i += 2 {
		if k, ok := keyvals[i].(string); ok && slices.Contains(leadingKeys, k) {
			continue
		}
		out = append(out, keyvals[i:min(i+2, len(keyvals))]...)
	}
	return o.next.Log(out...)
}

// jsonLogger writes each line as one JSON object whose keys keep the order they were
// logged in. Values are encoded as go-kit's JSON logger encodes them: a json.Marshaler or
// encoding.TextMarshaler as itself, another error or fmt.Stringer as its text. A key
// logged twice keeps its first place and its last value, as go-kit's map would.
type jsonLogger struct{ w io.Writer }

func (l jsonLogger) Log(keyvals ...any) error {
	var keys []string
	values := map[string]any{}
	for i := 0; i < len(keyvals); i += 2 {
		key := fmt.Sprint(keyvals[i])
		var value any = log.ErrMissingValue
		if i+1 < len(keyvals) {
			value = keyvals[i+1]
		}
		if _, seen := values[key]; !seen {
			keys = append(keys, key)
		}
		values[key] = jsonValue(value)
	}
	var line bytes.Buffer
	enc := json.NewEncoder(&line)
	enc.SetEscapeHTML(false)
	line.WriteByte('{')
	for i, key := range keys {
		if i > 0 {
			line.WriteByte(',')
		}
		if err := enc.Encode(key); err != nil {
			return err
		}
		trimNewline(&line)
		line.WriteByte(':')
		if err := enc.Encode(values[key]); err != nil {
			// A value JSON cannot hold (a channel, a NaN) is logged as its text.
			if err := enc.Encode(fmt.Sprint(values[key])); err != nil {
				return err
			}
		}
		trimNewline(&line)
	}
	line.WriteString("}\n")
	_, err := l.w.Write(line.Bytes())
	return err
}

// trimNewline drops the newline json.Encoder ends each value with.
func trimNewline(b *bytes.Buffer) { b.Truncate(b.Len() - 1) }

// jsonValue is what go-kit's JSON logger encodes for v; a String or Error method that
// panics (a nil pointer's, say) gives the panic's text rather than crashing the logger.
func jsonValue(v any) (out any) {
	defer func() {
		if p := recover(); p != nil {
			out = fmt.Sprintf("PANIC in String or Error method: %v", p)
		}
	}()
	switch x := v.(type) {
	case json.Marshaler, encoding.TextMarshaler:
		return v
	case error:
		return x.Error()
	case fmt.Stringer:
		return x.String()
	}
	return v
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

// untimed drops slog's own record time and caller: the go-kit logger stamps every
// line with ts, and the project's own lines name no caller, so neither does a library's.
type untimed struct{ slog.Handler }

func (h untimed) Handle(ctx context.Context, r slog.Record) error {
	r.Time, r.PC = time.Time{}, 0
	return h.Handler.Handle(ctx, r)
}

func (h untimed) WithAttrs(attrs []slog.Attr) slog.Handler {
	return untimed{h.Handler.WithAttrs(attrs)}
}

func (h untimed) WithGroup(name string) slog.Handler {
	return untimed{h.Handler.WithGroup(name)}
}
