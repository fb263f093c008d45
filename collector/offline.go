package collector

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"

	"github.com/mongomigrate/observability/internal/config"
)

// ResetOffline and DeregisterOffline do what Reset and Deregister do, for when no
// oplog_collector is running: the next start captures the source from now.
func ResetOffline(ctx context.Context, c *config.Collector, name string) error {
	return offline(ctx, c, name, false)
}

// DeregisterOffline: see ResetOffline.
func DeregisterOffline(ctx context.Context, c *config.Collector, name string) error {
	return offline(ctx, c, name, true)
}

func offline(ctx context.Context, c *config.Collector, name string, deregister bool) error {
	storeClient, err := connect(c.Store.MongoURI, "oplog_collector store")
	if err != nil {
		return fmt.Errorf("collector.store: %w", err)
	}
	defer storeClient.Disconnect(context.WithoutCancel(ctx))
	if err := newSourceStore(storeClient.Database(c.Store.Database), name).wipe(ctx); err != nil {
		return err
	}
	if c.Metadata == nil {
		return nil
	}
	metaClient, err := connect(c.Metadata.MongoURI, "oplog_collector metadata")
	if err != nil {
		return fmt.Errorf("collector.metadata: %w", err)
	}
	defer metaClient.Disconnect(context.WithoutCancel(ctx))
	beats := &heartbeats{coll: metaClient.Database(c.Metadata.Database).Collection(c.Metadata.Collection,
		options.Collection().SetWriteConcern(writeconcern.Majority()))}
	if deregister {
		return beats.remove(ctx, name)
	}
	scope := ""
	for _, s := range c.Sources {
		if s.Name == name {
			scope = s.Database
		}
	}
	return beats.report(ctx, name, heartbeat{status: stateStopped, scope: scope})
}
