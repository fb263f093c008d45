package httpserve

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/mongomigrate/observability/internal/logging"
)

// Routes adds the endpoints every daemon has to mux: a landing page at / linking to
// the metrics, /-/healthy (the process serves), /-/ready (ready returns nil: 200, else
// 503 with its reason, as Prometheus answers), and Go's profiles under /debug/pprof/
// (which the landing page links, as node_exporter serves them; behind the same
// --web.config.file as the rest).
func Routes(mux *http.ServeMux, program, description, telemetryPath string, ready func() error) error {
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "Healthy") })
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			http.Error(w, "Not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "Ready")
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	if telemetryPath == "/" {
		return nil
	}
	landing, err := web.NewLandingPage(web.LandingConfig{
		Name:        program,
		Description: description,
		Version:     version.Info(),
		Links: []web.LandingLinks{
			{Address: telemetryPath, Text: "Metrics"},
			{Address: "/-/healthy", Text: "Health"},
			{Address: "/-/ready", Text: "Readiness"},
		},
	})
	if err != nil {
		return fmt.Errorf("building the landing page: %w", err)
	}
	mux.Handle("/", landing)
	return nil
}

// ErrShuttingDown is what /-/ready says once the daemon has been asked to stop.
var ErrShuttingDown = errors.New("shutting down")

// Serve runs srv until ctx ends (SIGINT, SIGTERM), then calls stop (the daemon's own
// shutdown, during which /metrics is still served) and lets requests in flight finish,
// all within grace: a daemon stops in time for its supervisor (docker waits 10 s by
// default) however the servers it talks to behave. State-changing requests sent by a
// browser from another site are refused; refused requests are logged (rate-limited).
// It returns the process exit code.
func Serve(ctx context.Context, srv *http.Server, flags *web.FlagConfig, logger log.Logger, stop func(context.Context), grace time.Duration) int {
	srv.Handler = refuseCrossOrigin(srv.Handler)
	logOutermost(srv, newRefusalLog(logger, time.Minute))
	failed := make(chan error, 1)
	go func() { failed <- web.ListenAndServe(srv, flags, logging.Slog(logger)) }()
	select {
	case err := <-failed:
		level.Error(logger).Log("msg", "Cannot serve HTTP", "err", err)
		return 1
	case <-ctx.Done():
	}
	level.Info(logger).Log("msg", "Shutting down", "grace_period", grace)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	stop(shutdownCtx)
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		level.Warn(logger).Log("msg", "Requests still in flight at the end of the grace period were cut", "err", err)
		_ = srv.Close()
	}
	return 0
}
