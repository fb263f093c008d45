package config

import (
	"context"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
)

// Reloader loads the config file and hands it to apply, at start-up, on SIGHUP and on
// POST /-/reload. A file that fails to load or apply leaves the running config as it
// was; <namespace>_config_last_reload_successful says so.
type Reloader struct {
	scope  Scope
	path   string
	apply  func(*Config) error
	logger log.Logger

	mu          sync.Mutex // one reload at a time, so configs are applied in order
	loaded      atomic.Bool
	successful  prometheus.Gauge
	successTime prometheus.Gauge
}

// NewReloader loads for the scope: it registers the reload metrics of the program named
// namespace with reg.
func (s Scope) NewReloader(namespace, path string, apply func(*Config) error, reg prometheus.Registerer, logger log.Logger) *Reloader {
	r := &Reloader{
		scope:  s,
		path:   path,
		apply:  apply,
		logger: logger,
		successful: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "config_last_reload_successful",
			Help: "Whether the last configuration reload attempt was successful (1) or not (0).",
		}),
		successTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "config_last_reload_success_timestamp_seconds",
			Help: "Timestamp of the last successful configuration reload.",
		}),
	}
	reg.MustRegister(r.successful, r.successTime)
	return r
}

// Reload loads the file and applies it; on error the previous config, if there is one,
// stays in force.
func (r *Reloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	cfg, err := r.scope.Load(r.path)
	if err == nil {
		err = r.apply(cfg)
	}
	if err != nil {
		r.successful.Set(0)
		msg := "Configuration not applied; the previous one stays in force"
		if !r.loaded.Load() {
			msg = "Configuration not loaded: none is in force"
		}
		level.Error(r.logger).Log("msg", msg, "file", r.path, "err", err)
		return err
	}
	r.loaded.Store(true)
	r.successful.Set(1)
	r.successTime.SetToCurrentTime()
	level.Info(r.logger).Log("msg", "Configuration loaded", "file", r.path)
	return nil
}

// Loaded says whether a config has been applied: from the first successful load on,
// one is always in force.
func (r *Reloader) Loaded() bool { return r.loaded.Load() }

// ReloadOnSIGHUP reloads on every SIGHUP until ctx ends.
func (r *Reloader) ReloadOnSIGHUP(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			_ = r.Reload() // already logged and exported
		}
	}
}

// ServeHTTP implements POST /-/reload as Prometheus does: 200 when the new config is in
// force, 500 with the problems when it is not.
func (r *Reloader) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost && req.Method != http.MethodPut {
		w.Header().Set("Allow", "POST, PUT")
		http.Error(w, "use POST to reload the configuration", http.StatusMethodNotAllowed)
		return
	}
	if err := r.Reload(); err != nil {
		http.Error(w, "failed to reload config:\n"+err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
}
