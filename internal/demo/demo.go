// Package demo runs the project live on one machine with nothing but Go: `make
// demo-local`. It starts four test MongoDB servers (package mongotest: the source, the
// destination, the oplog store and the collectors' metadata cluster), a simulated
// mongosync that walks a sharded migration through its states on the real progress API
// shapes, simulated migration-verifiers that write their metadata as the verifier does
// and serve its API, a write load on the source, both of the project's daemons (the
// real binaries, on a generated config) and, when they are installed, Prometheus with
// the project's rules and Alertmanager. It prints what to open and, until stopped, what
// the migration does; stopping it stops everything it started and removes its files.
//
// It is test infrastructure, like mongotest, which the product binaries never link: it
// lives outside cmd/ and the release tarballs.
package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/mongotest"
)

// Options say where the demo finds what it runs and where its parts listen.
type Options struct {
	// RepoDir is the repository: alerts/*.yml and deploy/alertmanager/alertmanager.yml.
	RepoDir string
	// BinDir holds mongosync_exporter and oplog_collector, as make build leaves them.
	BinDir string
	// Addresses to listen on (host:port; port 0 for any free one).
	ExporterAddress, CollectorAddress, PrometheusAddress, AlertmanagerAddress string
	// Out receives what to open and what happens.
	Out io.Writer
}

// Names of what the demo configures, as the dashboards' variables show them.
const (
	sourceName   = "app"     // the collector's source: the source_cluster label
	metadataName = "central" // the exporter's collector_metadata entry: the metadata label
)

// demo is one run.
type demo struct {
	opts  Options
	dir   string
	start time.Time
	clock *clock

	outMu sync.Mutex

	servers map[string]*mongotest.Server // by role
	clients []*mongo.Client
	sims    *http.Server
	simAddr string
	load    *load
	simCtx  context.Context    // the load's, the simulations' and the narration's
	cancel  context.CancelFunc // ends simCtx
	wg      sync.WaitGroup

	children               []*child // in start order
	exporter, collector    *child
	prometheus, alertmgr   *child
	promAddr, alertmgrAddr string
}

// Run starts the demo, prints what to open, and runs it until ctx ends (SIGINT,
// SIGTERM) or one of its programs fails; then it stops everything it started and
// removes its directory.
func Run(ctx context.Context, opts Options) (err error) {
	for _, dir := range []*string{&opts.RepoDir, &opts.BinDir} {
		if *dir, err = filepath.Abs(*dir); err != nil {
			return err
		}
	}
	d := &demo{opts: opts, start: time.Now(), servers: map[string]*mongotest.Server{}}
	d.clock = newClock(d.start)
	if d.dir, err = os.MkdirTemp("", "demo-local-"); err != nil {
		return err
	}
	d.printf("Starting the local demo; its files (logs, configuration, Prometheus' data) are in %s until it stops.\n", d.dir)
	defer func() {
		d.stop()
		if rmErr := os.RemoveAll(d.dir); rmErr != nil && err == nil {
			err = rmErr
		}
		d.printf("Stopped everything the demo started, and removed %s.\n", d.dir)
	}()
	if err := d.startAll(ctx); err != nil {
		if ctx.Err() != nil { // stopped while starting: not a failure
			return nil
		}
		return err
	}
	d.printLive()
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.narrate(d.simCtx)
	}()
	return d.watch(ctx)
}

func (d *demo) printf(format string, args ...any) {
	d.outMu.Lock()
	defer d.outMu.Unlock()
	fmt.Fprintf(d.opts.Out, format, args...)
}

// event prints one thing the migration does, with the time since the demo started.
func (d *demo) event(format string, args ...any) {
	elapsed := time.Since(d.start).Round(time.Second)
	d.printf("[%8s] %s\n", "+"+elapsed.String(), fmt.Sprintf(format, args...))
}

func (d *demo) startAll(ctx context.Context) error {
	if err := d.startClusters(); err != nil {
		return err
	}
	if err := d.startSimulations(ctx); err != nil {
		return err
	}
	if err := d.startDaemons(ctx); err != nil {
		return err
	}
	return d.startPrometheus(ctx)
}

// startClusters starts the four test servers, each a replica set of its own name.
func (d *demo) startClusters() error {
	for _, role := range []string{"source", "destination", "store", "metadata"} {
		// Initiated days ago, as sets in service are: the capture's resume headroom is
		// then days (the source's oplog holds them), not the demo's age.
		srv, err := mongotest.Start(mongotest.Options{ReplicaSet: role, InitiatedAgo: 72 * time.Hour})
		if err != nil {
			return fmt.Errorf("starting the test MongoDB server for the %s: %w", role, err)
		}
		d.servers[role] = srv
	}
	d.printf("  MongoDB (test servers, package mongotest): source %s, destination %s, oplog store %s, metadata %s\n",
		d.host("source"), d.host("destination"), d.host("store"), d.host("metadata"))
	return nil
}

// host is a test server's host:port.
func (d *demo) host(role string) string {
	uri := strings.TrimPrefix(d.servers[role].URI(), "mongodb://")
	host, _, _ := strings.Cut(uri, "/")
	return host
}

func (d *demo) connect(role string) (*mongo.Client, error) {
	client, err := mongo.Connect(options.Client().ApplyURI(d.servers[role].URI()))
	if err != nil {
		return nil, err
	}
	d.clients = append(d.clients, client)
	return client, nil
}

// startSimulations starts the write load, the verifiers (whose state at the moment the
// demo joins the cycle is written before anything reads it) and the HTTP APIs of the
// simulated mongosync instances and verifiers.
func (d *demo) startSimulations(ctx context.Context) error {
	source, err := d.connect("source")
	if err != nil {
		return err
	}
	destination, err := d.connect("destination")
	if err != nil {
		return err
	}
	// The simulations outlive ctx: they run until the programs reading them have
	// stopped (stop ends them).
	d.simCtx, d.cancel = context.WithCancel(context.WithoutCancel(ctx))
	simCtx := d.simCtx
	d.load = &load{every: 50 * time.Millisecond}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.load.run(simCtx, source)
	}()

	mux := http.NewServeMux()
	mux.Handle("/mongosync/", http.StripPrefix("/mongosync", &mongosync{clock: d.clock, sourceHost: d.host("source"), destinationHost: d.host("destination")}))
	for _, script := range verifiers {
		v := newVerifier(script, destination.Database(script.database), d.clock, d.load, d.event, d.start)
		v.advance(ctx, time.Now())
		d.printf("  migration-verifier %s (simulated; metadata in the destination's %s): %s\n", script.name, script.database, v.summary(time.Now()))
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			v.run(simCtx)
		}()
		mux.HandleFunc("GET /verifier/"+script.name+"/api/v1/progress", func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, map[string]any{"progress": v.progress(time.Now())})
		})
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	d.simAddr = l.Addr().String()
	d.sims = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = d.sims.Serve(l) }()
	d.printf("  mongosync (simulated, instances %s and %s) and migration-verifier APIs (simulated): http://%s\n",
		instances[0].name, instances[1].name, d.simAddr)
	return nil
}

// config is the one config.yml both daemons read.
func (d *demo) config() string {
	var b strings.Builder
	b.WriteString("# Written by make demo-local: the local demo's configuration of both daemons.\nexporter:\n  mongosync:\n")
	for _, in := range instances {
		fmt.Fprintf(&b, "    - {migration: %s, name: %s, url: 'http://%s/mongosync/%s', timeout: 2s}\n", migrationName, in.name, d.simAddr, in.name)
	}
	b.WriteString("  verifiers:\n")
	for _, v := range verifiers {
		fmt.Fprintf(&b, "    - {migration: %s, name: %s, uri: '%s', database: %s, api_url: 'http://%s/verifier/%s'}\n",
			migrationName, v.name, d.servers["destination"].URI(), v.database, d.simAddr, v.name)
	}
	fmt.Fprintf(&b, "  collector_metadata:\n    - {name: %s, uri: '%s'}\n", metadataName, d.servers["metadata"].URI())
	fmt.Fprintf(&b, `collector:
  store: {uri: '%s'}
  metadata: {uri: '%s'}
  heartbeat_interval: 5s
  checkpoint_interval: 2s
  retention: 24h
  sources:
    - {name: %s, uri: '%s'}
`, d.servers["store"].URI(), d.servers["metadata"].URI(), sourceName, d.servers["source"].URI())
	return b.String()
}

// startDaemons starts both of the project's binaries on the generated config and waits
// until each is ready (/-/ready): the exporter once it serves, the collector once it
// captures the source.
func (d *demo) startDaemons(ctx context.Context) error {
	configFile := filepath.Join(d.dir, "config.yml")
	if err := os.WriteFile(configFile, []byte(d.config()), 0o600); err != nil {
		return err
	}
	var err error
	if d.exporter, err = d.startChild("mongosync_exporter", filepath.Join(d.opts.BinDir, "mongosync_exporter"),
		"--config.file="+configFile, "--web.listen-address="+d.opts.ExporterAddress); err != nil {
		return err
	}
	if d.collector, err = d.startChild("oplog_collector", filepath.Join(d.opts.BinDir, "oplog_collector"),
		"run", "--config.file="+configFile, "--web.listen-address="+d.opts.CollectorAddress); err != nil {
		return err
	}
	for _, c := range []*child{d.exporter, d.collector} {
		if err := d.awaitReady(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// startChild starts a program, logging to the demo's directory, and waits until it
// listens.
func (d *demo) startChild(name, bin string, args ...string) (*child, error) {
	c, err := startChild(name, filepath.Join(d.dir, name+".log"), bin, args...)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: build it first (make build, or make demo-local, which does)", err)
		}
		return nil, err
	}
	d.children = append(d.children, c)
	if _, err := c.listenAddress(time.Minute); err != nil {
		return nil, err
	}
	return c, nil
}

func (d *demo) printLive() {
	d.printf("\nThe demo is live (%s after it started). Open:\n", time.Since(d.start).Round(100*time.Millisecond))
	d.printf("  mongosync_exporter  http://%s/metrics\n", d.exporter.addr())
	d.printf("  oplog_collector     http://%s/metrics\n", d.collector.addr())
	if d.prometheus != nil {
		d.printf("  Prometheus          %s\n", graphURL(d.promAddr))
		d.printf("    the key graphs:")
		for _, k := range keyQueries {
			d.printf("\n      %s: %s", k.title, k.expr)
		}
		d.printf("\n    alerts: http://%s/alerts   targets: http://%s/targets\n", d.promAddr, d.promAddr)
		d.printf("    Grafana: import dashboards/*.json with this Prometheus (http://%s) as their data source.\n", d.promAddr)
	}
	if d.alertmgr != nil {
		d.printf("  Alertmanager        http://%s\n", d.alertmgrAddr)
	}
	d.printf("  oplog_collector status --collector.url http://%s   (the capture, from the command line)\n", d.collector.addr())
	d.printf("Logs and configuration: %s. Ctrl-C stops everything.\n\n", d.dir)
}

// watch runs until ctx ends or a program exits on its own.
func (d *demo) watch(ctx context.Context) error {
	exited := make(chan *child, len(d.children))
	for _, c := range d.children {
		go func() {
			<-c.done
			exited <- c
		}()
	}
	select {
	case <-ctx.Done():
		return nil
	case c := <-exited:
		// Ctrl-C reaches every program of the terminal at once: one may exit a moment
		// before the demo hears of it.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Second):
			return c.failure()
		}
	}
}

// stop stops the programs (Prometheus first, so that it does not record the daemons
// going away), then the simulations and the load, then the test servers.
func (d *demo) stop() {
	for i := len(d.children) - 1; i >= 0; i-- {
		if err := d.children[i].stop(15 * time.Second); err != nil {
			d.printf("%v\n", err)
		}
	}
	if d.sims != nil {
		_ = d.sims.Close()
	}
	if d.cancel != nil {
		d.cancel()
	}
	d.wg.Wait()
	if d.load != nil {
		if err := d.load.err(); err != nil {
			d.printf("The write load's last error: %v\n", err)
		}
	}
	for _, c := range d.clients {
		_ = c.Disconnect(context.Background())
	}
	for _, srv := range d.servers {
		srv.Close()
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
