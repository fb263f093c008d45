package mongotest_test

import (
	"context"
	"regexp"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongomigrate/observability/internal/mongotest"
)

// deadline bounds every test; it is a hang guard, not a timing assertion.
const deadline = 60 * time.Second

func ctx(t *testing.T) context.Context { return ctxTimeout(t, deadline) }

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return c
}

func connect(t testing.TB, uri string, opts ...*options.ClientOptions) *mongo.Client {
	t.Helper()
	// A short heartbeat keeps Disconnect short: the Go driver can miss
	// cancelling a streaming hello that has just started, and then waits for
	// it, up to the heartbeat interval (the server waits that long, as
	// mongod does).
	o := options.Client().ApplyURI(uri).SetHeartbeatInterval(500 * time.Millisecond)
	for _, extra := range opts {
		if extra.AppName != nil {
			o.SetAppName(*extra.AppName)
		}
		if extra.RetryWrites != nil {
			o.SetRetryWrites(*extra.RetryWrites)
		}
	}
	c, err := mongo.Connect(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c
}

var nonWord = regexp.MustCompile(`[^A-Za-z0-9]+`)

// testDB is a database private to the test, dropped afterwards, so tests
// can share a real server.
func testDB(t *testing.T, c *mongo.Client) *mongo.Database {
	name := nonWord.ReplaceAllString(t.Name(), "_")
	if len(name) > 50 {
		name = name[len(name)-50:]
	}
	db := c.Database("mt_" + name)
	_ = db.Drop(context.Background())
	t.Cleanup(func() { _ = db.Drop(context.Background()) })
	return db
}

// fake starts a server with the fake's own controls (see mongotest.New) and
// connects to it.
func fake(t *testing.T, why string, opts mongotest.Options) (*mongo.Client, context.Context) {
	t.Helper()
	return connect(t, mongotest.New(t, why, opts).URI()), ctx(t)
}

// setup connects to mongotest.URI(t) and returns a database private to the
// test (see testDB; its Client is the connection) and the test's context.
func setup(t *testing.T) (*mongo.Database, context.Context) {
	t.Helper()
	return testDB(t, connect(t, mongotest.URI(t))), ctx(t)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// codeOf returns the server error code in err, or 0.
func codeOf(err error) int {
	switch e := err.(type) {
	case mongo.CommandError:
		return int(e.Code)
	case mongo.WriteException:
		if len(e.WriteErrors) > 0 {
			return e.WriteErrors[0].Code
		}
		if e.WriteConcernError != nil {
			return e.WriteConcernError.Code
		}
	case mongo.BulkWriteException:
		if len(e.WriteErrors) > 0 {
			return e.WriteErrors[0].Code
		}
	}
	return 0
}

func TestHandshakeAndPing(t *testing.T) {
	c := connect(t, mongotest.URI(t))
	cx := ctx(t)
	must(t, c.Ping(cx, nil))
	var hello bson.M
	must(t, c.Database("admin").RunCommand(cx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello))
	// A replica set primary (https://www.mongodb.com/docs/manual/reference/command/hello/).
	if hello["isWritablePrimary"] != true || hello["setName"] == nil || hello["logicalSessionTimeoutMinutes"] == nil {
		t.Fatalf("hello = %v", hello)
	}
	if v, _ := hello["maxWireVersion"].(int32); v < 21 {
		t.Fatalf("maxWireVersion = %v, want >= 21 (MongoDB 7.0)", hello["maxWireVersion"])
	}
	var info bson.M
	must(t, c.Database("admin").RunCommand(cx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info))
	if info["version"] == nil {
		t.Fatalf("buildInfo = %v", info)
	}
	res := c.Database("admin").RunCommand(cx, bson.D{{Key: "ping", Value: 1}})
	raw, err := res.Raw()
	must(t, err)
	if _, err := raw.LookupErr("$clusterTime"); err != nil {
		t.Fatalf("reply without $clusterTime: %v", raw)
	}
	if _, err := raw.LookupErr("operationTime"); err != nil {
		t.Fatalf("reply without operationTime: %v", raw)
	}
}

func TestUnknownCommand(t *testing.T) {
	c := connect(t, mongotest.URI(t))
	err := c.Database("admin").RunCommand(ctx(t), bson.D{{Key: "noSuchCommand", Value: 1}}).Err()
	// Unknown commands fail with 59 CommandNotFound.
	if codeOf(err) != 59 {
		t.Fatalf("err = %v, want code 59", err)
	}
}
