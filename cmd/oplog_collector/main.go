package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/mongomigrate/observability/collector"
	"github.com/mongomigrate/observability/internal/config"
	"github.com/mongomigrate/observability/internal/httpserve"
	"github.com/mongomigrate/observability/internal/logging"
)

const program = "oplog_collector"

// metricsNamespace prefixes every series the daemon exports about itself: its metrics
// are oplog_capture_*, while oplog_collector_* are the exporter's series about
// collectors' heartbeats.
const metricsNamespace = "oplog_capture"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

type flags struct {
	command        string
	configFile     string
	configCheck    bool
	telemetryPath  string
	web            *web.FlagConfig
	enableAdminAPI bool
	grace          time.Duration
	log            *logging.Flags
	cli            cliFlags
	pitr           *pitrFlags
}

func parseFlags(args []string, stdout, stderr io.Writer) (*flags, error) {
	app := kingpin.New(program, "Captures MongoDB change streams into an oplog store for point-in-time recovery, losing nothing.")
	app.UsageWriter(stdout).ErrorWriter(stderr)
	app.HelpFlag.Short('h')
	app.Version(version.Print(program))
	f := &flags{}
	app.Flag("config.file", "Path to the configuration file (section collector:).").Default("config.yml").StringVar(&f.configFile)
	app.Flag("config.check", "Check the configuration file and exit: 0 when valid, 1 with every problem listed when not.").BoolVar(&f.configCheck)
	f.log = logging.AddFlags(app)

	runCmd := app.Command("run", "Capture every configured source until stopped (the default).").Default()
	runCmd.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").StringVar(&f.telemetryPath)
	runCmd.Flag("web.enable-admin-api", "Serve the control API's destructive commands (reset, deregister), to authenticated users only: they need basic_auth_users or client certificates in --web.config.file.").
		BoolVar(&f.enableAdminAPI)
	runCmd.Flag("shutdown.grace-period", "On SIGTERM, how long to write what was read and report before exiting; what is not written by then stays in the source's oplog, behind the saved position.").
		Default("8s").DurationVar(&f.grace)
	f.web = kingpinflag.AddFlags(runCmd, ":9783")
	addCommands(app, &f.cli)
	f.pitr = addPITRCommands(app)

	command, err := app.Parse(args)
	if err != nil {
		return nil, err
	}
	f.command = command
	return f, nil
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	f, err := parseFlags(args, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v; try --help\n", program, err)
		return 2
	}
	if f.configCheck {
		return checkConfig(f.configFile, stdout, stderr)
	}
	switch f.command {
	case "run":
		return capture(f, stderr)
	case "range", "replay":
		return runPITR(f, stdout, stderr)
	}
	return runCommand(f.command, f.configFile, &f.cli, stdin, stdout, stderr)
}

func checkConfig(path string, stdout, stderr io.Writer) int {
	cfg, err := config.ForCollector.Load(path)
	if err != nil {
		fmt.Fprintf(stderr, "%s is not valid:\n%v\n", path, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s is valid: %d source(s).\n", path, len(cfg.Collector.Sources))
	return 0
}

func capture(f *flags, stderr io.Writer) int {
	logger := logging.New(f.log, stderr)
	if _, err := config.ForCollector.Load(f.configFile); err != nil {
		level.Error(logger).Log("msg", "Cannot start", "err", err)
		return 1
	}
	admin, err := adminAPI(f)
	if err != nil {
		level.Error(logger).Log("msg", "Cannot start", "err", err)
		return 1
	}
	me := collector.NewInstance()
	level.Info(logger).Log("msg", "Starting "+program, "version", version.Info(), "build_context", version.BuildContext(),
		"instance", me.ID, "admin_api", admin.Enabled)
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		versioncollector.NewCollector(metricsNamespace),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	manager := collector.NewManager(reg, logger, collector.Options{Instance: me, StopGrace: f.grace})
	reloader := config.ForCollector.NewReloader(metricsNamespace, f.configFile, manager.Apply, reg, logger)
	if err := reloader.Reload(); err != nil {
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go reloader.ReloadOnSIGHUP(ctx)

	mux := http.NewServeMux()
	mux.Handle(f.telemetryPath, promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.Handle("/-/reload", reloader)
	mux.Handle("/api/v1/", manager.Handler(admin))
	// Ready while every configured source runs or stands by, and until asked to stop.
	ready := func() error {
		if ctx.Err() != nil {
			return httpserve.ErrShuttingDown
		}
		return manager.Ready()
	}
	if err := httpserve.Routes(mux, program, "Change-stream capture for point-in-time recovery", f.telemetryPath, ready); err != nil {
		level.Error(logger).Log("msg", "Cannot serve HTTP", "err", err)
		stopWithin(manager, f.grace)
		return 1
	}
	code := httpserve.Serve(ctx, &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, f.web, logger, manager.Stop, f.grace)
	if code != 0 {
		stopWithin(manager, f.grace)
	}
	return code
}

func stopWithin(m *collector.Manager, grace time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	m.Stop(ctx)
}

// adminAPI refuses --web.enable-admin-api without authentication: the commands it turns
// on wipe captured history, which must never be one unauthenticated request away.
func adminAPI(f *flags) (collector.AdminAPI, error) {
	auth := httpserve.WebAuth{}
	if f.web.WebConfigFile != nil {
		auth.File = *f.web.WebConfigFile
	}
	admin := collector.AdminAPI{Enabled: f.enableAdminAPI, Authenticate: auth.User}
	if !f.enableAdminAPI {
		return admin, nil
	}
	authenticated, err := auth.Configured()
	if err != nil {
		return admin, err
	}
	if !authenticated {
		return admin, errors.New("--web.enable-admin-api needs authentication: give --web.config.file with basic_auth_users " +
			"(or tls_server_config.client_auth_type: RequireAndVerifyClientCert); see README.md, \"Security\"")
	}
	return admin, nil
}
