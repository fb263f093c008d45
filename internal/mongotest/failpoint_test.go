package mongotest_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/mongotest"
)

// failCommand configures the real server's failCommand failpoint
// (https://github.com/mongodb/mongo/wiki/The-%22failCommand%22-fail-point)
// and turns it off when the test ends.
func failCommand(t *testing.T, c *mongo.Client, mode any, data bson.D) {
	t.Helper()
	must(t, c.Database("admin").RunCommand(ctx(t), bson.D{
		{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: mode}, {Key: "data", Value: data},
	}).Err())
	t.Cleanup(func() {
		_ = c.Database("admin").RunCommand(ctx(t), bson.D{{Key: "configureFailPoint", Value: "failCommand"}, {Key: "mode", Value: "off"}}).Err()
	})
}

// failPointClients connects two clients to one server: admin, to configure
// failpoints, and an application client made with appOpts (its app name is
// what the failpoints target). It returns admin and a collection, through
// the application client, in a database private to the test.
func failPointClients(t *testing.T, appOpts *options.ClientOptions) (*mongo.Client, *mongo.Collection) {
	t.Helper()
	uri := mongotest.URI(t)
	admin := connect(t, uri)
	return admin, testDB(t, connect(t, uri, appOpts)).Collection("fp")
}

func TestFailPointErrorCodeTimes(t *testing.T) {
	admin, coll := failPointClients(t, options.Client().SetAppName("fp-times").SetRetryWrites(false))
	cx := ctx(t)
	failCommand(t, admin, bson.D{{Key: "times", Value: 2}}, bson.D{
		{Key: "failCommands", Value: bson.A{"insert"}}, {Key: "errorCode", Value: 1234},
		{Key: "errorLabels", Value: bson.A{"MyLabel"}}, {Key: "appName", Value: "fp-times"},
	})
	for i := 0; i < 2; i++ {
		_, err := coll.InsertOne(cx, bson.D{{Key: "i", Value: i}})
		var se mongo.ServerError
		if !errors.As(err, &se) || !se.HasErrorCode(1234) || !se.HasErrorLabel("MyLabel") {
			t.Fatalf("insert %d: err = %v, want injected 1234 with MyLabel", i, err)
		}
	}
	_, err := coll.InsertOne(cx, bson.D{{Key: "i", Value: 3}})
	must(t, err) // the failpoint is spent after two times
	// Another application is not affected by an appName-scoped failpoint.
	failCommand(t, admin, "alwaysOn", bson.D{{Key: "failCommands", Value: bson.A{"find"}}, {Key: "errorCode", Value: 2}, {Key: "appName", Value: "fp-times"}})
	if err := coll.FindOne(cx, bson.D{}).Err(); codeOf(err) != 2 {
		t.Fatalf("find under alwaysOn: err = %v", err)
	}
	if err := testDB(t, admin).Collection("fp").FindOne(cx, bson.D{}).Err(); err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		t.Fatalf("other app: %v", err)
	}
}

// TestFailPointRetryableWrite: a retryable error on a retryable write gets
// the RetryableWriteError label and the driver retries it once.
func TestFailPointRetryableWrite(t *testing.T) {
	admin, coll := failPointClients(t, options.Client().SetAppName("fp-retry"))
	cx := ctx(t)
	// 6 HostUnreachable is a retryable error code.
	failCommand(t, admin, bson.D{{Key: "times", Value: 1}}, bson.D{{Key: "failCommands", Value: bson.A{"insert"}}, {Key: "errorCode", Value: 6}, {Key: "appName", Value: "fp-retry"}})
	_, err := coll.InsertOne(cx, bson.D{{Key: "_id", Value: 1}})
	must(t, err)
	if n, _ := coll.CountDocuments(cx, bson.D{}); n != 1 {
		t.Fatalf("count after retried insert = %d", n)
	}
}

func TestFailPointCloseConnection(t *testing.T) {
	admin, coll := failPointClients(t, options.Client().SetAppName("fp-close"))
	cx := ctx(t)
	failCommand(t, admin, bson.D{{Key: "times", Value: 1}}, bson.D{{Key: "failCommands", Value: bson.A{"find"}}, {Key: "closeConnection", Value: true}, {Key: "appName", Value: "fp-close"}})
	err := coll.FindOne(cx, bson.D{}, options.FindOne()).Err()
	// Retryable reads retry once after the network error, so the find succeeds.
	if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		t.Fatalf("find after closed connection: %v", err)
	}
	failCommand(t, admin, "alwaysOn", bson.D{{Key: "failCommands", Value: bson.A{"find"}}, {Key: "closeConnection", Value: true}, {Key: "appName", Value: "fp-close"}})
	// Without a context deadline the driver retries a read once; with one
	// it would retry until the deadline.
	err = coll.FindOne(context.Background(), bson.D{}).Err()
	if !mongo.IsNetworkError(err) {
		t.Fatalf("always closed connections: err = %v, want a network error", err)
	}
}

func TestFailPointBlockConnection(t *testing.T) {
	admin, coll := failPointClients(t, options.Client().SetAppName("fp-block"))
	cx := ctx(t)
	failCommand(t, admin, bson.D{{Key: "times", Value: 1}}, bson.D{{Key: "failCommands", Value: bson.A{"ping"}}, {Key: "blockConnection", Value: true}, {Key: "blockTimeMS", Value: 200}, {Key: "appName", Value: "fp-block"}})
	start := time.Now()
	must(t, coll.Database().Client().Ping(cx, nil))
	// Blocking delays the reply by at least blockTimeMS (a lower bound, not a timing threshold).
	if time.Since(start) < 200*time.Millisecond {
		t.Fatalf("ping returned after %v, before blockTimeMS", time.Since(start))
	}
}

func TestWriteConcernMajority(t *testing.T) {
	c := connect(t, mongotest.URI(t)+"&w=majority&journal=true")
	coll := testDB(t, c).Collection("wc")
	_, err := coll.InsertOne(ctx(t), bson.D{{Key: "x", Value: 1}})
	must(t, err)
}

func TestManyConcurrentClients(t *testing.T) {
	uri := mongotest.URI(t)
	c0 := connect(t, uri)
	db := testDB(t, c0)
	const clients, perClient = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := 0; i < clients; i++ {
		c := connect(t, uri)
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			coll := c.Database(db.Name()).Collection("conc")
			for j := 0; j < perClient; j++ {
				if _, err := coll.InsertOne(ctx(t), bson.D{{Key: "_id", Value: i*perClient + j}}); err != nil {
					errs <- err
					return
				}
				if _, err := coll.UpdateOne(ctx(t), bson.D{{Key: "_id", Value: i*perClient + j}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}}); err != nil {
					errs <- err
					return
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	n, err := db.Collection("conc").CountDocuments(ctx(t), bson.D{{Key: "n", Value: 1}})
	must(t, err)
	if n != clients*perClient {
		t.Fatalf("count = %d, want %d", n, clients*perClient)
	}
}
