package collector

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/go-kit/log"
	"github.com/mongomigrate/observability/internal/config"
	"github.com/mongomigrate/observability/internal/oplogstore"
)

// Offline acts on sources' stores directly, for when no collector runs: the
// oplog_collector commands reset, deregister and resume with --offline. It finds the sources'
// leases in the store, as the daemon does, whatever the config says of a metadata
// database; it refuses a source the store knows nothing of, and one whose lease a live
// collector holds; and it acts as the admin API does (wipeSource).
type Offline struct {
	cfg *config.Collector
	sh  *shared
}

// OpenOffline connects to the store (and the metadata database) of c.
func OpenOffline(c *config.Collector) (*Offline, error) {
	// No logger: a command acts while its operator watches, and says what it did.
	sh, err := connectShared(c, NewInstance(), log.NewNopLogger())
	if err != nil {
		return nil, err
	}
	return &Offline{cfg: c, sh: sh}, nil
}

// Close disconnects.
func (o *Offline) Close() { o.sh.close() }

// ErrNotInStore is returned for a source the store holds nothing of.
var ErrNotInStore = errors.New("the store holds nothing of this source")

// StoreSummary is what a source's store holds, for a confirmation.
type StoreSummary struct {
	StoredEvents   int64
	Oldest, Newest time.Time
}

// Inspect tells what the source's store holds, and refuses a source the store does not
// know (ErrNotInStore) or whose lease a live collector holds (ErrNotHolder).
func (o *Offline) Inspect(ctx context.Context, name string) (StoreSummary, error) {
	if err := o.refuseUnknown(ctx, name); err != nil {
		return StoreSummary{}, err
	}
	l, now, err := o.sh.leases.liveHolder(ctx, name)
	if err != nil {
		return StoreSummary{}, err
	}
	if l != nil {
		return StoreSummary{}, fmt.Errorf("%q: %w: %s; use that collector's API (without --offline), or stop it first", name, ErrNotHolder, describeHolder(l, now))
	}
	store := newSourceStore(o.sh.storeDB, name)
	n, err := store.count(ctx)
	if err != nil {
		return StoreSummary{}, err
	}
	sum := StoreSummary{StoredEvents: n}
	for _, edge := range []struct {
		at   *time.Time
		find func(context.Context) (bson.Timestamp, bool, error)
	}{{&sum.Oldest, store.oldest}, {&sum.Newest, store.newest}} {
		ts, ok, err := edge.find(ctx)
		if err != nil {
			return StoreSummary{}, err
		}
		if ok {
			*edge.at = tsTime(ts)
		}
	}
	return sum, nil
}

// refuseUnknown refuses a source the store knows nothing of, naming those it knows: a
// mistyped name must not leave a lease and a gap record behind.
func (o *Offline) refuseUnknown(ctx context.Context, name string) error {
	known, err := oplogstore.KnownSources(ctx, o.sh.storeDB)
	if err != nil {
		return err
	}
	if o.sh.leases.legacy != nil {
		// A source de-registered by an earlier collector is known only there.
		leased, err := oplogstore.LeasedSources(ctx, o.sh.leases.legacy)
		if err != nil {
			return fmt.Errorf("the metadata database: %w", err)
		}
		known = append(known, leased...)
	}
	if slices.Contains(known, name) {
		return nil
	}
	slices.Sort(known)
	holds := "it holds no source"
	if len(known) > 0 {
		holds = "the sources it holds: " + strings.Join(slices.Compact(known), ", ")
	}
	return fmt.Errorf("%q: %w (database %s; %s): check --source, and that --config.file names that source's store", name, ErrNotInStore, o.sh.storeDB.Name(), holds)
}

// Reset wipes the source's events and token; the next collector to start captures it
// from now. The gap is recorded, with who asked.
func (o *Offline) Reset(ctx context.Context, name string, by Requester) (Wiped, error) {
	return o.wipe(ctx, name, by, false)
}

// Deregister wipes everything kept about the source and marks it de-registered.
func (o *Offline) Deregister(ctx context.Context, name string, by Requester) (Wiped, error) {
	return o.wipe(ctx, name, by, true)
}

func (o *Offline) wipe(ctx context.Context, name string, by Requester, deregister bool) (Wiped, error) {
	if err := o.refuseUnknown(ctx, name); err != nil {
		return Wiped{}, err
	}
	scope := ""
	if s, ok := o.source(name); ok {
		scope = s.Database
	}
	return wipeSource(ctx, o.sh, name, scope, by, deregister)
}

// Resume captures the source again, at the next collector's start, from a time its
// oplog still holds, as the admin API's resume does: it reads the source's oplog with
// the source's uri from the config.
func (o *Offline) Resume(ctx context.Context, name, from string, by Requester) (Resumed, error) {
	point, err := parseResumeFrom(from)
	if err != nil {
		return Resumed{}, err
	}
	if err := o.refuseUnknown(ctx, name); err != nil {
		return Resumed{}, err
	}
	src, ok := o.source(name)
	if !ok {
		return Resumed{}, fmt.Errorf("%q is not among the sources of --config.file: resume reads the source's oplog, and needs its uri there", name)
	}
	client, err := connect(src.MongoURI, "oplog_collector")
	if err != nil {
		return Resumed{}, fmt.Errorf("collector source %q: %w", name, err)
	}
	defer func() { _ = client.Disconnect(context.WithoutCancel(ctx)) }()
	reader := newOplogReader(client, src.MongoURI)
	defer reader.close()
	plan, err := planResume(ctx, client, reader, point)
	if err != nil {
		return Resumed{}, err
	}
	return resumeSource(ctx, o.sh, name, src.Database, plan, by)
}

// source is the configured source named name.
func (o *Offline) source(name string) (config.Source, bool) {
	for _, s := range o.cfg.Sources {
		if s.Name == name {
			return s, true
		}
	}
	return config.Source{}, false
}
