package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/mongomigrate/observability/exporter"
	"github.com/mongomigrate/observability/internal/config"
	"github.com/mongomigrate/observability/internal/httpserve"
	"github.com/mongomigrate/observability/internal/logging"
)

const program = "mongosync_exporter"

// description names what the exporter reads, for --help and the landing page.
const description = "Prometheus exporter for MongoDB migrations: mongosync, migration-verifier, oplog collector heartbeats"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// flags are the command line, parsed.
type flags struct {
	configFile    string
	configCheck   bool
	telemetryPath string
	timeoutOffset float64
	maxRequests   int
	web           *web.FlagConfig
	log           *logging.Flags
	collect       map[string]*bool
}

func parseFlags(args []string, stdout, stderr io.Writer) (*flags, error) {
	app := kingpin.New(program, description+". At every scrape it reads what the config file's exporter: section lists: "+
		"each mongosync's progress API, each migration-verifier's metadata database (and its API when api_url is set), "+
		"and the oplog collectors' heartbeats in each central metadata database.")
	app.UsageWriter(stdout).ErrorWriter(stderr)
	app.HelpFlag.Short('h')
	app.Version(version.Print(program))
	f := &flags{collect: map[string]*bool{}}
	app.Flag("config.file", "Path to the configuration file (sections exporter: and collector:).").Default("config.yml").StringVar(&f.configFile)
	app.Flag("config.check", "Check the configuration file and exit: 0 when valid, 1 with every problem listed when not.").BoolVar(&f.configCheck)
	app.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").StringVar(&f.telemetryPath)
	app.Flag("web.max-requests", "Maximum number of parallel scrape requests; more are answered 503 at once. Use 0 to disable.").Default("40").IntVar(&f.maxRequests)
	app.Flag("timeout-offset", "Seconds to take off Prometheus' scrape timeout (X-Prometheus-Scrape-Timeout-Seconds) so the reply reaches it in time.").Default("0.25").Float64Var(&f.timeoutOffset)
	f.web = kingpinflag.AddFlags(app, ":9782")
	f.log = logging.AddFlags(app)
	for _, r := range exporter.Registrations() {
		f.collect[r.Name] = app.Flag("collect."+r.Name, r.Help+" (--no-collect."+r.Name+" to disable)").
			Default(strconv.FormatBool(r.Default)).Bool()
	}
	if _, err := app.Parse(args); err != nil {
		return nil, err
	}
	if f.timeoutOffset < 0 {
		return nil, fmt.Errorf("--timeout-offset must not be negative, got %v", f.timeoutOffset)
	}
	return f, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	f, err := parseFlags(args, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v; try --help\n", program, err)
		return 2
	}
	logger := logging.New(f.log, stderr)
	enabled := map[string]bool{}
	for name, on := range f.collect {
		enabled[name] = *on
	}
	exp := exporter.New(enabled, time.Duration(f.timeoutOffset*float64(time.Second)), logger)

	if f.configCheck {
		return checkConfig(f.configFile, exp, stdout, stderr)
	}

	level.Info(logger).Log("msg", "Starting "+program, "version", version.Info(), "build_context", version.BuildContext())
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		versioncollector.NewCollector(program),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	reloader := config.ForExporter.NewReloader(program, f.configFile, exp.ApplyConfig, reg, logger)
	if err := reloader.Reload(); err != nil {
		return 1
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go reloader.ReloadOnSIGHUP(ctx)

	// Ready once a config is in force (the first load happens before serving) and
	// until asked to stop.
	ready := func() error {
		if ctx.Err() != nil {
			return httpserve.ErrShuttingDown
		}
		if !reloader.Loaded() {
			return errors.New("no configuration loaded")
		}
		return nil
	}
	handler, err := routes(f, exp, reg, reloader, ready)
	if err != nil {
		level.Error(logger).Log("msg", "Cannot serve HTTP", "err", err)
		return 1
	}
	// Nothing of its own to stop: requests in flight finish within the grace period.
	return httpserve.Serve(ctx, &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}, f.web, logger, func(context.Context) {}, 5*time.Second)
}

// checkConfig is --config.check: load the file as the daemon does (its exporter:
// section fully, collector: for syntax only) and build every scraper, without contacting
// any target. Loading checks everything building could refuse (connection strings as the
// driver reads them, TLS files), so every problem is listed at once, with its line.
func checkConfig(path string, exp *exporter.Exporter, stdout, stderr io.Writer) int {
	cfg, err := config.ForExporter.Load(path)
	if err == nil {
		err = exp.ApplyConfig(cfg)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s is not valid:\n%v\n", path, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s is valid: %d mongosync instance(s), %d verifier(s), %d collector metadata database(s).\n",
		path, len(cfg.Exporter.Mongosync), len(cfg.Exporter.Verifiers), len(cfg.Exporter.HeartbeatDatabases))
	return 0
}

func routes(f *flags, exp *exporter.Exporter, reg *prometheus.Registry, reloader *config.Reloader, ready func() error) (http.Handler, error) {
	mux := http.NewServeMux()
	mux.Handle(f.telemetryPath, exp.Handler(reg, f.maxRequests))
	mux.Handle("/-/reload", reloader)
	err := httpserve.Routes(mux, program, description, f.telemetryPath, ready)
	return mux, err
}
