package main

// The point-in-time recovery commands: range (the recoverable window of a source) and
// replay (its stored events onto a target). docs/pitr.md is their runbook.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/config"
	"github.com/mongomigrate/observability/internal/oplogstore"
	"github.com/mongomigrate/observability/internal/pitr"
	"github.com/mongomigrate/observability/internal/redact"
)

// Exit codes of range and replay (docs/pitr.md).
const (
	exitOK      = 0
	exitFailed  = 1 // could not read the store, write the target, or an event
	exitUsage   = 2 // flags or times that do not parse
	exitRefused = 3 // replay refused: a gap, or --to past the checkpoint
)

type pitrFlags struct {
	source, store, storeDatabase string
	format                       string
	target, from, to             string
	namespaces                   []string
	dryRun, allowGap, beyond     bool
	progressInterval             time.Duration
}

func addPITRCommands(app *kingpin.Application) *pitrFlags {
	f := &pitrFlags{}
	storeFlags := func(cmd *kingpin.CmdClause) {
		cmd.Flag("source", "Name of the source (its events are in oplogs_<source>).").Required().StringVar(&f.source)
		cmd.Flag("store", "Connection string of the oplog store; by default collector.store of --config.file. It holds credentials: prefer the config file's ${VAR} or uri_file.").StringVar(&f.store)
		cmd.Flag("store.database", "Database of the oplog store; by default collector.store.database of --config.file, else "+oplogstore.DefaultDatabase+".").StringVar(&f.storeDatabase)
	}
	rangeCmd := app.Command("range", "Show the recoverable window of a source: oldest and newest stored events, checkpoint, gaps.")
	storeFlags(rangeCmd)
	rangeCmd.Flag("format", "text or json.").Default("text").EnumVar(&f.format, "text", "json")

	replayCmd := app.Command("replay", "Apply a source's stored events, in order, to a target cluster up to and including --to (see docs/pitr.md).")
	storeFlags(replayCmd)
	replayCmd.Flag("target", "Connection string of the cluster to replay onto (never printed). Also from $OPLOG_REPLAY_TARGET_URI, which keeps it out of the process list.").Envar("OPLOG_REPLAY_TARGET_URI").StringVar(&f.target)
	replayCmd.Flag("from", "Replay the events after this time: RFC 3339 (2025-06-03T02:00:00Z, the end of that second) or seconds,increment. Default: from the oldest stored event.").StringVar(&f.from)
	replayCmd.Flag("to", "Replay the events up to and including this time: RFC 3339 (every event of that second) or seconds,increment.").Required().StringVar(&f.to)
	replayCmd.Flag("namespace", "Replay only this db.coll, or db for a whole database (repeatable).").StringsVar(&f.namespaces)
	replayCmd.Flag("dry-run", "Read the events and count what would be applied, per namespace and operation; write nothing.").BoolVar(&f.dryRun)
	replayCmd.Flag("allow-gap", "Replay across the store's gaps (events there may be missing).").BoolVar(&f.allowGap)
	replayCmd.Flag("allow-beyond-checkpoint", "Replay to a --to after the checkpoint (events after it may not be in the store yet).").BoolVar(&f.beyond)
	replayCmd.Flag("progress-interval", "How often a progress line goes to stderr.").Default("10s").DurationVar(&f.progressInterval)
	return f
}

// runPITR runs range or replay, until done or interrupted (SIGINT, SIGTERM), and turns
// the outcome into the exit code: a failure's text goes to stderr, credentials taken out.
func runPITR(f *flags, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	run := &pitrRun{command: f.command, configFile: f.configFile, flags: f.pitr, stdout: stdout, stderr: stderr}
	var err error
	if f.command == "range" {
		err = run.showRange(ctx)
	} else {
		err = run.replay(ctx)
	}
	if err == nil {
		return exitOK
	}
	code := exitFailed
	var failed *pitrFailure
	if errors.As(err, &failed) {
		code = failed.code
	}
	fmt.Fprintln(stderr, redact.Credentials(err.Error()))
	return code
}

// pitrFailure is why range or replay did not do what was asked, and the exit code that
// says which kind of reason it is.
type pitrFailure struct {
	code int
	text string
}

func (f *pitrFailure) Error() string { return f.text }

func failure(code int, format string, args ...any) error {
	return &pitrFailure{code: code, text: fmt.Sprintf(format, args...)}
}

// pitrRun is one run of range or replay: the command line, and where it writes.
type pitrRun struct {
	command, configFile string
	flags               *pitrFlags
	stdout, stderr      io.Writer
}

// showRange reads the source's window from the store and writes it.
func (r *pitrRun) showRange(ctx context.Context) error {
	store, closeStore, err := r.openStore(ctx)
	if err != nil {
		return err
	}
	defer closeStore()
	w, err := pitr.Range(ctx, store, r.flags.source)
	if err == nil {
		err = writeWindow(r.stdout, w, r.flags.format)
	}
	if err != nil {
		return failure(exitFailed, "range %s: %v", r.flags.source, err)
	}
	return nil
}

func writeWindow(out io.Writer, w *pitr.Window, format string) error {
	if format == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(w)
	}
	return w.WriteText(out)
}

// replay reads which events to apply, opens the store and the target, applies them and
// says what was done.
func (r *pitrRun) replay(ctx context.Context) error {
	opts, err := r.flags.replayOptions(r.stderr)
	if err != nil {
		return err
	}
	store, closeStore, err := r.openStore(ctx)
	if err != nil {
		return err
	}
	defer closeStore()
	target, closeTarget, err := r.openTarget(ctx)
	if err != nil {
		return err
	}
	defer closeTarget()
	summary, err := pitr.Replay(ctx, store, target, opts)
	return r.report(ctx, summary, err)
}

// replayOptions reads replay's flags: the events after --from up to --to, and how.
func (p *pitrFlags) replayOptions(progress io.Writer) (pitr.Options, error) {
	opts := pitr.Options{Source: p.source, Namespaces: p.namespaces, DryRun: p.dryRun, AllowGap: p.allowGap,
		AllowBeyondCheckpoint: p.beyond, Progress: progress, ProgressInterval: p.progressInterval}
	var err error
	if opts.To, err = oplogstore.ParseTime(p.to); err != nil {
		return opts, failure(exitUsage, "replay: --to: %v", err)
	}
	if p.from == "" {
		return opts, nil
	}
	from, err := oplogstore.ParseTime(p.from)
	if err != nil {
		return opts, failure(exitUsage, "replay: --from: %v", err)
	}
	if !from.Before(opts.To) {
		return opts, failure(exitUsage, "replay: --from %s is not before --to %s", p.from, p.to)
	}
	opts.From = &from
	return opts, nil
}

// openStore connects to the oplog store (connectTo: no server is contacted yet) and
// returns its database, and what disconnects from it.
func (r *pitrRun) openStore(ctx context.Context) (*mongo.Database, func(), error) {
	uri, database, err := r.flags.storeLocation(r.configFile)
	if err != nil {
		return nil, nil, failure(exitUsage, "%s %s: %v", r.command, r.flags.source, err)
	}
	client, err := connectTo(uri, program+" "+r.command)
	if err != nil {
		return nil, nil, failure(exitUsage, "%s %s: the store's connection string: %v", r.command, r.flags.source, err)
	}
	return client.Database(database), disconnecting(ctx, client), nil
}

// openTarget connects to the cluster to replay onto; a dry run needs none (nil).
func (r *pitrRun) openTarget(ctx context.Context) (*mongo.Client, func(), error) {
	if r.flags.dryRun {
		return nil, func() {}, nil
	}
	if r.flags.target == "" {
		return nil, nil, failure(exitUsage, "replay: --target (or $OPLOG_REPLAY_TARGET_URI) is required unless --dry-run")
	}
	client, err := connectTo(r.flags.target, program+" replay")
	if err != nil {
		return nil, nil, failure(exitUsage, "replay: the target's connection string: %v", err)
	}
	return client, disconnecting(ctx, client), nil
}

// disconnecting is what disconnects client, even once ctx is cancelled.
func disconnecting(ctx context.Context, client *mongo.Client) func() {
	return func() { _ = client.Disconnect(context.WithoutCancel(ctx)) }
}

// report says what a replay did, or why it stopped and what to do.
func (r *pitrRun) report(ctx context.Context, summary *pitr.Summary, err error) error {
	source := r.flags.source
	var refusal *pitr.Refusal
	switch {
	case errors.As(err, &refusal):
		return failure(exitRefused, "replay %s refused, nothing written: %v", source, err)
	case err != nil:
		if summary.Events > 0 {
			fmt.Fprintln(r.stdout, "Stopped before --to. What was done:")
			_ = summary.WriteText(r.stdout)
		}
		if ctx.Err() != nil {
			return failure(exitFailed, "replay %s interrupted: %v\nRun the same command again: every step of a replay is idempotent, so it converges.", source, err)
		}
		return failure(exitFailed, "replay %s stopped: %v\nWhat was applied stays; once the cause is fixed, run the same command again (it converges).", source, err)
	}
	if err := summary.WriteText(r.stdout); err != nil {
		return failure(exitFailed, "replay %s: %v", source, err)
	}
	return nil
}

// storeLocation is the store's connection string and database: --store and
// --store.database, else the config file's collector.store.
func (p *pitrFlags) storeLocation(configFile string) (uri, database string, err error) {
	database = p.storeDatabase
	uri = p.store
	if uri == "" {
		cfg, err := config.ForCollector.Load(configFile)
		if err != nil {
			return "", "", fmt.Errorf("no --store, and the config file to find collector.store in does not load: %w", err)
		}
		if uri, err = cfg.Collector.Store.Resolve(); err != nil || uri == "" {
			return "", "", fmt.Errorf("no --store, and %s has no collector.store: %v", configFile, err)
		}
		if database == "" {
			database = cfg.Collector.Store.Database
		}
	}
	if database == "" {
		database = oplogstore.DefaultDatabase
	}
	return uri, database, nil
}

// connectTo makes a client without contacting the server, after checking the
// connection string as the daemons do (an error never quotes it). The URI's own
// serverSelectionTimeoutMS and appName, when it has them, win over these defaults.
func connectTo(uri, appName string) (*mongo.Client, error) {
	if err := config.ValidateMongoURI(uri); err != nil {
		return nil, err
	}
	return mongo.Connect(options.Client().SetAppName(appName).SetServerSelectionTimeout(30 * time.Second).ApplyURI(uri))
}
