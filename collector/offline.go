package collector

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongomigrate/observability/internal/config"
	hbdoc "github.com/mongomigrate/observability/internal/heartbeat"
)

// Offline acts on sources' stores directly, for when no collector runs: the
// oplog_collector commands reset and deregister with --offline. It refuses a source
// whose lease a live collector holds, and holds the lease itself while it works, so
// that no collector starts capturing into a store being wiped.
type Offline struct {
	cfg *config.Collector
	sh  *shared
}

// OpenOffline connects to the store (and the metadata database) of c.
func OpenOffline(c *config.Collector) (*Offline, error) {
	sh, err := connectShared(c, NewInstance())
	if err != nil {
		return nil, err
	}
	return &Offline{cfg: c, sh: sh}, nil
}

// Close disconnects.
func (o *Offline) Close() { o.sh.close() }

// StoreSummary is what a source's store holds, for a confirmation.
type StoreSummary struct {
	StoredEvents   int64
	Oldest, Newest time.Time
}

// Inspect tells what the source's store holds, and refuses (ErrNotHolder) when a live
// collector holds its lease.
func (o *Offline) Inspect(ctx context.Context, name string) (StoreSummary, error) {
	if err := o.refuseHeld(ctx, name); err != nil {
		return StoreSummary{}, err
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

func (o *Offline) refuseHeld(ctx context.Context, name string) error {
	l, now, err := o.sh.leases.read(ctx, name)
	if err != nil {
		return err
	}
	if l != nil && l.Deregistered == nil && !l.expired(now) {
		return fmt.Errorf("%q: %w: %s; use that collector's API (without --offline), or stop it first", name, ErrNotHolder, describeHolder(l, now))
	}
	return nil
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
	acquired, held, err := o.sh.leases.acquire(ctx, name, true)
	if err != nil {
		return Wiped{}, err
	}
	if !acquired {
		return Wiped{}, fmt.Errorf("%q: %w: %s", name, ErrNotHolder, describeHolder(held, time.Now()))
	}
	defer func() { _ = o.sh.leases.release(context.WithoutCancel(ctx), name) }()
	saved, err := newSourceStore(o.sh.storeDB, name).loadToken(ctx)
	if err != nil {
		return Wiped{}, err
	}
	var checkpoint *position
	if saved.Token != nil {
		pos := saved.position()
		checkpoint = &pos
	}
	wiped, err := wipeSource(ctx, o.sh, name, by, checkpoint, deregister)
	if err != nil || deregister {
		return wiped, err
	}
	scope := ""
	for _, s := range o.cfg.Sources {
		if s.Name == name {
			scope = s.Database
		}
	}
	return wiped, o.sh.beats.report(ctx, name, hbdoc.Report{Status: stateStopped, Scope: scope})
}
