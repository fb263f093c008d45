// Command demo-local runs the project live on this machine with only Go installed: test
// MongoDB servers, a simulated migration (mongosync and migration-verifier), a write
// load, both daemons, and Prometheus and Alertmanager when installed (package demo).
// `make demo-local` builds and runs it; Ctrl-C stops everything it started.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kingpin/v2"

	"github.com/mongomigrate/observability/internal/demo"
)

func main() {
	app := kingpin.New("demo-local", "Runs a live local migration with both daemons on test servers (make demo-local). Ctrl-C stops everything it started.")
	app.HelpFlag.Short('h')
	opts := demo.Options{Out: os.Stdout}
	app.Flag("repo", "The repository's directory (the rules in alerts/, Alertmanager's configuration in deploy/).").Default(".").StringVar(&opts.RepoDir)
	app.Flag("bin-dir", "Where make build left mongosync_exporter and oplog_collector.").Default(".").StringVar(&opts.BinDir)
	app.Flag("exporter.listen-address", "Where mongosync_exporter listens (port 0: any free port).").Default("127.0.0.1:9782").StringVar(&opts.ExporterAddress)
	app.Flag("collector.listen-address", "Where oplog_collector listens.").Default("127.0.0.1:9783").StringVar(&opts.CollectorAddress)
	app.Flag("prometheus.listen-address", "Where Prometheus listens, when installed.").Default("127.0.0.1:9090").StringVar(&opts.PrometheusAddress)
	app.Flag("alertmanager.listen-address", "Where Alertmanager listens, when installed.").Default("127.0.0.1:9093").StringVar(&opts.AlertmanagerAddress)
	kingpin.MustParse(app.Parse(os.Args[1:]))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := demo.Run(ctx, opts); err != nil {
		fmt.Fprintln(os.Stderr, "demo-local:", err)
		stop()
		os.Exit(1)
	}
}
