// Command oplog_collector captures the change streams of MongoDB source clusters into an
// oplog store for point-in-time recovery, and serves its own metrics. Flags, commands
// and wiring only; the work is in package collector.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
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

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type flags struct {
	command       string
	configFile    string
	configCheck   bool
	telemetryPath string
	web           *web.FlagConfig
	log           *logging.Flags
	source        string
	url           string
	pitr          *pitrFlags
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
	f.web = kingpinflag.AddFlags(runCmd, ":9783")

	url := func(cmd *kingpin.CmdClause) {
		cmd.Flag("collector.url", "URL of the running oplog_collector's HTTP API.").Default("http://127.0.0.1:9783").StringVar(&f.url)
	}
	reset := app.Command("reset", "Wipe a source's stored events and resume token and capture it again from now (the way out of error_resume_token_lost). Works on a running collector without touching the other sources, or directly on the store when none runs.")
	reset.Flag("source", "Name of the source.").Required().StringVar(&f.source)
	url(reset)
	deregister := app.Command("deregister", "Stop capturing a source, wipe its stored events and resume token, and delete its metadata document.")
	deregister.Flag("source", "Name of the source.").Required().StringVar(&f.source)
	url(deregister)
	statusCmd := app.Command("status", "Show each source's state, lag, window and last error, from the running collector.")
	url(statusCmd)
	f.pitr = addPITRCommands(app)

	command, err := app.Parse(args)
	if err != nil {
		return nil, err
	}
	f.command = command
	return f, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	f, err := parseFlags(args, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v; try --help\n", program, err)
		return 2
	}
	if f.configCheck {
		return checkConfig(f.configFile, stdout, stderr)
	}
	switch f.command {
	case "reset", "deregister":
		return command(f, stdout, stderr)
	case "status":
		return showStatus(f, stdout, stderr)
	case "range", "replay":
		return runPITR(f, stdout, stderr)
	}
	return capture(f, stderr)
}

func checkConfig(path string, stdout, stderr io.Writer) int {
	cfg, err := loadForCapture(path)
	if err != nil {
		fmt.Fprintf(stderr, "%s is not valid:\n%v\n", path, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s is valid: %d source(s).\n", path, len(cfg.Collector.Sources))
	return 0
}

// loadForCapture loads the file and requires what capturing needs.
func loadForCapture(path string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	if len(cfg.Collector.Sources) == 0 {
		return nil, fmt.Errorf("%s: collector.sources is empty: list at least one source to capture (see README.md, \"Running the collector\")", path)
	}
	return cfg, nil
}

func capture(f *flags, stderr io.Writer) int {
	logger := logging.New(f.log, stderr)
	if _, err := loadForCapture(f.configFile); err != nil {
		level.Error(logger).Log("msg", "Cannot start", "err", err)
		return 1
	}
	level.Info(logger).Log("msg", "Starting "+program, "version", version.Info(), "build_context", version.BuildContext())
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		versioncollector.NewCollector("oplog_capture"),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	manager := collector.NewManager(reg, logger)
	reloader := config.NewReloader(program, f.configFile, manager.Apply, reg, logger)
	if err := reloader.Reload(); err != nil {
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go reloader.ReloadOnSIGHUP(ctx)

	mux := http.NewServeMux()
	mux.Handle(f.telemetryPath, promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.Handle("/-/reload", reloader)
	mux.Handle("/api/v1/", manager.Handler())
	if err := httpserve.Routes(mux, program, "Change-stream capture for point-in-time recovery", f.telemetryPath); err != nil {
		level.Error(logger).Log("msg", "Cannot serve HTTP", "err", err)
		manager.Stop()
		return 1
	}
	code := httpserve.Serve(ctx, &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, f.web, logger, manager.Stop)
	if code != 0 {
		manager.Stop()
	}
	return code
}

// command runs reset or deregister on the running collector, or directly on the store
// when no collector answers.
func command(f *flags, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	endpoint := strings.TrimSuffix(f.url, "/") + "/api/v1/sources/" + f.source + "/" + f.command
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, nil)
	if err != nil {
		fmt.Fprintf(stderr, "%s %s: %v\n", f.command, f.source, err)
		return 2
	}
	resp, err := http.DefaultClient.Do(req)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return commandOffline(ctx, f, stdout, stderr)
	case err != nil:
		fmt.Fprintf(stderr, "%s %s: %v\n", f.command, f.source, err)
		return 1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		fmt.Fprintf(stderr, "%s %s: the collector at %s answered %s: %s", f.command, f.source, f.url, resp.Status, body)
		return 1
	}
	fmt.Fprintf(stdout, "%s %s: done by the running collector at %s.\n", f.command, f.source, f.url)
	if f.command == "deregister" {
		fmt.Fprintf(stdout, "Remove %s from %s, or it will be captured again at the next start.\n", f.source, f.configFile)
	}
	return 0
}

func commandOffline(ctx context.Context, f *flags, stdout, stderr io.Writer) int {
	cfg, err := config.Load(f.configFile)
	if err != nil {
		fmt.Fprintf(stderr, "No collector answers at %s, and the config to act on the store directly does not load:\n%v\n", f.url, err)
		return 1
	}
	do := collector.ResetOffline
	if f.command == "deregister" {
		do = collector.DeregisterOffline
	}
	if err := do(ctx, &cfg.Collector, f.source); err != nil {
		fmt.Fprintf(stderr, "%s %s: %v\n", f.command, f.source, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s %s: done on the store directly (no collector answers at %s); the next start captures from now.\n", f.command, f.source, f.url)
	return 0
}

func showStatus(f *flags, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(f.url, "/")+"/api/v1/sources", nil)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "No collector answers at %s (%v). The exporter's oplog_collector_* metrics show the last heartbeats.\n", f.url, err)
		return 1
	}
	defer resp.Body.Close()
	var sources []collector.Status
	if err := json.NewDecoder(resp.Body).Decode(&sources); err != nil || resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "Unexpected answer from %s: %s %v\n", f.url, resp.Status, err)
		return 1
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SOURCE\tSTATE\tLAG\tWINDOW\tBUFFERED\tLAST ERROR")
	now := time.Now()
	for _, s := range sources {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\n", s.Name, s.State, since(now, s.Checkpoint), between(s.StoreOldest, s.LastEvent), s.BufferedEvents, s.Error)
	}
	_ = w.Flush()
	return 0
}

func since(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return now.Sub(t).Round(time.Second).String()
}

func between(from, to time.Time) string {
	if from.IsZero() || to.IsZero() {
		return "-"
	}
	return to.Sub(from).Round(time.Second).String()
}
