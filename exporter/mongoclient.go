package exporter

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/config"
	"github.com/mongomigrate/observability/internal/redact"
)

// mongoClientOptions is where tests add a command monitor; production leaves it alone.
var mongoClientOptions = func(o *options.ClientOptions) *options.ClientOptions { return o }

// connectMongo returns a client for uri without contacting the server (the driver
// connects lazily), so a config with an unreachable cluster still applies and the
// cluster's _up metric says it is down.
//
// timeout is the client-side operation timeout: the driver sends it to the server as
// maxTimeMS on every command (or what is left of the scrape's deadline, if less), so a
// slow query is stopped on the server too, not just abandoned by the exporter.
func connectMongo(uri config.MongoURI, timeout time.Duration) (*mongo.Client, error) {
	connString, err := uri.Resolve()
	if err != nil {
		return nil, err
	}
	opts := options.Client().ApplyURI(connString).
		SetAppName(Namespace).
		SetTimeout(timeout).
		SetServerSelectionTimeout(timeout).
		SetConnectTimeout(timeout).
		SetMaxPoolSize(4) // a few concurrent queries per scrape; never a load on the cluster
	client, err := mongo.Connect(mongoClientOptions(opts))
	if err != nil {
		// The driver may quote the connection string it could not parse.
		return nil, errors.New(redact.Credentials(err.Error()))
	}
	return client, nil
}

// aggregate runs an aggregation that the server itself stops at the operation timeout.
// Collection.Find and Collection.Aggregate leave maxTimeMS out, because the caller
// manages their cursors (DRIVERS-2722): a slow query would keep running on the cluster
// after the exporter gave up on it. Run as a command, it carries maxTimeMS.
func aggregate(ctx context.Context, db *mongo.Database, collection string, pipeline mongo.Pipeline) (*mongo.Cursor, error) {
	return db.RunCommandCursor(ctx, bson.D{
		{Key: "aggregate", Value: collection},
		{Key: "pipeline", Value: pipeline},
		{Key: "cursor", Value: bson.D{}},
	})
}

// disconnect closes a client in the background: a scrape that started before a reload
// may still be using it, and the driver lets in-flight operations finish.
func disconnect(client *mongo.Client, timeout time.Duration) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		_ = client.Disconnect(ctx)
	}()
}
