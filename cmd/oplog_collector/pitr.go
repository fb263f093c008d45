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

// runPITR runs range or replay.
func runPITR(f *flags, stdout, stderr io.Writer) int {
	p := f.pitr
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fail := func(code int, format string, args ...any) int {
		fmt.Fprintln(stderr, redact.Credentials(fmt.Sprintf(format, args...)))
		return code
	}
	uri, database, err := p.storeLocation(f.configFile)
	if err != nil {
		return fail(exitUsage, "%s %s: %v", f.command, p.source, err)
	}
	storeClient, err := connectTo(uri, program+" "+f.command)
	if err != nil {
		return fail(exitUsage, "%s %s: the store's connection string: %v", f.command, p.source, err)
	}
	defer storeClient.Disconnect(context.WithoutCancel(ctx))
	store := storeClient.Database(database)

	if f.command == "range" {
		w, err := pitr.Range(ctx, store, p.source)
		if err != nil {
			return fail(exitFailed, "range %s: %v", p.source, err)
		}
		if p.format == "json" {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			err = enc.Encode(w)
		} else {
			err = w.WriteText(stdout)
		}
		if err != nil {
			return fail(exitFailed, "range %s: %v", p.source, err)
		}
		return exitOK
	}

	opts := pitr.Options{Source: p.source, Namespaces: p.namespaces, DryRun: p.dryRun, AllowGap: p.allowGap,
		AllowBeyondCheckpoint: p.beyond, Progress: stderr, ProgressInterval: p.progressInterval}
	if opts.To, err = oplogstore.ParseTime(p.to); err != nil {
		return fail(exitUsage, "replay: --to: %v", err)
	}
	if p.from != "" {
		from, err := oplogstore.ParseTime(p.from)
		if err != nil {
			return fail(exitUsage, "replay: --from: %v", err)
		}
		if !from.Before(opts.To) {
			return fail(exitUsage, "replay: --from %s is not before --to %s", p.from, p.to)
		}
		opts.From = &from
	}
	var target *mongo.Client
	if !p.dryRun {
		if p.target == "" {
			return fail(exitUsage, "replay: --target (or $OPLOG_REPLAY_TARGET_URI) is required unless --dry-run")
		}
		if target, err = connectTo(p.target, program+" replay"); err != nil {
			return fail(exitUsage, "replay: the target's connection string: %v", err)
		}
		defer target.Disconnect(context.WithoutCancel(ctx))
	}
	summary, err := pitr.Replay(ctx, store, target, opts)
	var refusal *pitr.Refusal
	switch {
	case errors.As(err, &refusal):
		return fail(exitRefused, "replay %s refused, nothing written: %v", p.source, err)
	case err != nil:
		if summary.Events > 0 {
			fmt.Fprintln(stdout, "Stopped before --to. What was done:")
			_ = summary.WriteText(stdout)
		}
		if ctx.Err() != nil {
			return fail(exitFailed, "replay %s interrupted: %v\nRun the same command again: every step of a replay is idempotent, so it converges.", p.source, err)
		}
		return fail(exitFailed, "replay %s stopped: %v\nWhat was applied stays; once the cause is fixed, run the same command again (it converges).", p.source, err)
	}
	if err := summary.WriteText(stdout); err != nil {
		return fail(exitFailed, "replay %s: %v", p.source, err)
	}
	return exitOK
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
