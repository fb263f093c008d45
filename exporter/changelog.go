package exporter

import (
	"sync"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/mongomigrate/observability/internal/redact"
)

// ChangeLog logs a condition when it starts or changes and once when it clears, rather
// than at every scrape: a mongosync that is down for an hour, scraped every 15 s, gives
// two log lines, not 240.
type ChangeLog struct {
	logger log.Logger
	mu     sync.Mutex
	last   map[string]string
}

// NewChangeLog returns a ChangeLog writing to logger.
func NewChangeLog(logger log.Logger) *ChangeLog {
	return &ChangeLog{logger: logger, last: map[string]string{}}
}

// changed records state under key and tells whether it differs from the previous one.
func (c *ChangeLog) changed(key, state string) (previous string, changed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	previous = c.last[key]
	if previous == state {
		return previous, false
	}
	if state == "" {
		delete(c.last, key)
	} else {
		c.last[key] = state
	}
	return previous, true
}

// Failure logs err (a warning) when it differs from the last one logged under key, and
// a recovery (info) when err is nil after a failure. keyvals identify the target.
// Credentials in the error text are redacted.
func (c *ChangeLog) Failure(key string, err error, keyvals ...any) {
	text := ""
	if err != nil {
		text = redact.Credentials(err.Error())
	}
	previous, changed := c.changed(key, text)
	switch {
	case !changed:
	case err != nil:
		level.Warn(c.logger).Log(append(keyvals, "msg", "Read failed; logged again only when the error changes", "err", text)...)
	default:
		level.Info(c.logger).Log(append(keyvals, "msg", "Read succeeds again", "previous_err", previous)...)
	}
}

// Notice logs text (at warn level) when it differs from the last text under key, and
// that it cleared when it becomes empty. It is for conditions a source reports, such as
// mongosync's warnings, which must not become label values.
func (c *ChangeLog) Notice(key, msg, text string, keyvals ...any) {
	if _, changed := c.changed(key, text); !changed {
		return
	}
	if text == "" {
		level.Info(c.logger).Log(append(keyvals, "msg", msg+" cleared")...)
		return
	}
	level.Warn(c.logger).Log(append(keyvals, "msg", msg, "text", redact.Credentials(text))...)
}
