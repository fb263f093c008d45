package exporter

import (
	"fmt"
	"sync"
	"unicode/utf8"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/mongomigrate/observability/internal/redact"
)

// OnChangeLogger logs a condition when it starts or changes, and once when it clears,
// rather than at every scrape: a mongosync that is down for an hour, scraped every 15 s,
// gives two log lines, not 240. What it echoes from a source is cut to maxLoggedText
// bytes, and it remembers at most maxConditions conditions (keys name targets and
// documents, which a source can multiply).
type OnChangeLogger struct {
	logger log.Logger
	mu     sync.Mutex
	last   map[string]string
}

// NewOnChangeLogger returns an OnChangeLogger writing to logger.
func NewOnChangeLogger(logger log.Logger) *OnChangeLogger {
	return &OnChangeLogger{logger: logger, last: map[string]string{}}
}

// Bounds of an OnChangeLogger.
const (
	maxLoggedText = 2048
	maxConditions = 10_000
)

// changed records state under key and tells whether it differs from the previous one.
// When the log already remembers maxConditions conditions, one of them is forgotten: at
// worst it is logged once more.
func (c *OnChangeLogger) changed(key, state string) (previous string, changed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	previous = c.last[key]
	if previous == state {
		return previous, false
	}
	if state == "" {
		delete(c.last, key)
		return previous, true
	}
	if _, remembered := c.last[key]; !remembered && len(c.last) >= maxConditions {
		for k := range c.last {
			delete(c.last, k)
			break
		}
	}
	c.last[key] = state
	return previous, true
}

// capped cuts text from a source to maxLoggedText bytes (at a character boundary),
// saying how long it was.
func capped(text string) string {
	if len(text) <= maxLoggedText {
		return text
	}
	cut := maxLoggedText
	for cut > 0 && !utf8.RuneStart(text[cut]) {
		cut--
	}
	return fmt.Sprintf("%s... (%d bytes in all)", text[:cut], len(text))
}

// Failure logs err (a warning) when it differs from the last one logged under key, and
// a recovery (info) when err is nil after a failure, and tells whether it logged.
// keyvals identify the target. Credentials in the error text are redacted.
func (c *OnChangeLogger) Failure(key string, err error, keyvals ...any) bool {
	text := ""
	if err != nil {
		text = capped(redact.Credentials(err.Error()))
	}
	previous, changed := c.changed(key, text)
	switch {
	case !changed:
	case err != nil:
		level.Warn(c.logger).Log(append(keyvals, "msg", "Read failed; logged again only when the error changes", "err", text)...)
	default:
		level.Info(c.logger).Log(append(keyvals, "msg", "Read succeeds again", "previous_err", previous)...)
	}
	return changed
}

// Notice logs text (at warn level) when it differs from the last text under key, and
// that it cleared when it becomes empty. It is for conditions a source reports, such as
// mongosync's warnings, which must not become label values.
func (c *OnChangeLogger) Notice(key, msg, text string, keyvals ...any) {
	text = capped(redact.Credentials(text))
	if _, changed := c.changed(key, text); !changed {
		return
	}
	if text == "" {
		level.Info(c.logger).Log(append(keyvals, "msg", msg+" cleared")...)
		return
	}
	level.Warn(c.logger).Log(append(keyvals, "msg", msg, "text", text)...)
}
