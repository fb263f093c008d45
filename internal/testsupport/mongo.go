package testsupport

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Connect returns a client of the server at uri, disconnected when the test ends.
//
// Its heartbeat is short: a client disconnecting while its monitor's hello is held by
// the server (a test server's awaitable hello) waits for that hello to end, and the
// disconnect is bounded so that a server the test stopped cannot hold the cleanup.
func Connect(tb testing.TB, uri string) *mongo.Client {
	tb.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetHeartbeatInterval(500 * time.Millisecond))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = client.Disconnect(ctx)
	})
	return client
}
