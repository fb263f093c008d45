package exporter

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/config"
	"github.com/mongomigrate/observability/internal/mongoerr"
)

// mongoClientOptions is where tests add a command monitor; production leaves it alone.
var mongoClientOptions = func(o *options.ClientOptions) *options.ClientOptions { return o }

// mongoClient is a target's MongoDB client. It is made when the configuration is
// applied and, if that failed (a mongodb+srv:// name that does not resolve yet), again at
// each read until it succeeds: the failure is the target's, shown by its _up, not the
// configuration's, which was checked as the driver checks it.
type mongoClient struct {
	uri     config.MongoURI
	timeout time.Duration
	mu      sync.Mutex
	client  *mongo.Client
}

func newMongoClient(uri config.MongoURI, timeout time.Duration) *mongoClient {
	c := &mongoClient{uri: uri, timeout: timeout}
	_, _ = c.get()
	return c
}

// get returns the client, making it if needed. The driver connects lazily: no server is
// contacted here.
//
// timeout is the client-side operation timeout: the driver sends it to the server as
// maxTimeMS on every command (or what is left of the scrape's deadline, if less), so a
// slow query is stopped on the server too, not just abandoned by the exporter.
func (c *mongoClient) get() (*mongo.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client != nil {
		return c.client, nil
	}
	connString, err := c.uri.Resolve()
	if err != nil {
		return nil, err
	}
	opts := options.Client().ApplyURI(connString).
		SetAppName(Namespace).
		SetTimeout(c.timeout).
		SetServerSelectionTimeout(c.timeout).
		SetConnectTimeout(c.timeout).
		SetMaxPoolSize(4) // a few concurrent queries per scrape; never a load on the cluster
	client, err := mongo.Connect(mongoClientOptions(opts))
	if err != nil {
		if invalid := config.ValidateMongoURI(connString); invalid != nil {
			return nil, invalid // worded without the connection string's secrets
		}
		return nil, errors.New(mongoerr.Describe(err))
	}
	c.client = client
	return client, nil
}

// close releases the client in the background: a scrape that started before a reload
// may still be using it, and the driver lets in-flight operations finish.
func (c *mongoClient) close() {
	c.mu.Lock()
	client := c.client
	c.mu.Unlock()
	if client == nil {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
		defer cancel()
		_ = client.Disconnect(ctx)
	}()
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
