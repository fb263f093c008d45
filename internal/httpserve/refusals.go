package httpserve

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
)

// refused are the statuses of a request turned away for who or what sent it: no or
// wrong credentials (401, from the toolkit's basic auth), forbidden (403: the admin API
// off, a cross-site request), not JSON (415), a malformed command (400).
var refused = map[int]bool{
	http.StatusBadRequest:           true,
	http.StatusUnauthorized:         true,
	http.StatusForbidden:            true,
	http.StatusUnsupportedMediaType: true,
}

// refusalLog logs refused requests at warn, at most one line per remote address and
// status per window, the next line saying how many were left out: someone probing
// the API shows in the log, and cannot flood it. Credentials are never logged: a line
// gives the method, path, status, the address, the request's Origin, and the reason
// the server answered.
type refusalLog struct {
	logger log.Logger
	window time.Duration
	now    func() time.Time

	mu   sync.Mutex
	seen map[refusalKey]*refusals
}

type refusalKey struct {
	addr   string
	status int
}

type refusals struct {
	logged     time.Time // when the last line was written
	suppressed int       // refusals since, not logged
}

// maxRefusalKeys bounds what the log remembers: past it, what is older than the
// window is forgotten.
const maxRefusalKeys = 4096

// maxReason bounds the reason quoted from a refusal's body.
const maxReason = 200

func newRefusalLog(logger log.Logger, window time.Duration) *refusalLog {
	return &refusalLog{logger: logger, window: window, now: time.Now, seen: map[refusalKey]*refusals{}}
}

// wrap logs the refusals h answers.
func (l *refusalLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if refused[rec.status] {
			l.record(r, rec.status, rec.reason)
		}
	})
}

func (l *refusalLog) record(r *http.Request, status int, reason string) {
	addr := r.RemoteAddr
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host // one client, whatever its port
	}
	key := refusalKey{addr, status}
	now := l.now()
	l.mu.Lock()
	entry := l.seen[key]
	if entry != nil && now.Sub(entry.logged) < l.window {
		entry.suppressed++
		l.mu.Unlock()
		return
	}
	suppressed := 0
	if entry != nil {
		suppressed = entry.suppressed
	}
	if len(l.seen) >= maxRefusalKeys {
		for k, e := range l.seen {
			if now.Sub(e.logged) >= l.window {
				delete(l.seen, k)
			}
		}
	}
	l.seen[key] = &refusals{logged: now}
	l.mu.Unlock()
	keyvals := []any{"msg", "Request refused", "method", r.Method, "path", r.URL.Path, "status", status, "remote_addr", addr,
		"reason", strings.TrimSpace(reason)}
	if origin := r.Header.Get("Origin"); origin != "" {
		keyvals = append(keyvals, "origin", origin)
	}
	if suppressed > 0 {
		keyvals = append(keyvals, "suppressed_since_last", suppressed)
	}
	level.Warn(l.logger).Log(keyvals...)
}

// statusRecorder keeps a response's status and the start of its body (the reason, for
// a refusal).
type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
	reason string
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	if refused[s.status] && !s.wrote {
		s.reason, _, _ = strings.Cut(string(b[:min(len(b), maxReason)]), "\n")
	}
	s.wrote = true
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer (flushes, deadlines).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// logOutermost logs the refusals of srv's handler as it is once serving.
// exporter-toolkit puts its authentication in front of srv.Handler when it starts
// serving, so its refusals (401) never reach a handler of ours: the handler is wrapped
// at the first connection instead, once the toolkit has installed its own. ConnContext
// runs in the serving goroutine before each connection is served, so every request
// sees the wrapped handler.
func logOutermost(srv *http.Server, l *refusalLog) {
	var once sync.Once
	next := srv.ConnContext
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		once.Do(func() { srv.Handler = l.wrap(srv.Handler) })
		if next != nil {
			return next(ctx, c)
		}
		return ctx
	}
}
