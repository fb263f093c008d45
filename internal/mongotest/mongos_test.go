package mongotest_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/mongomigrate/observability/internal/mongotest"
)

// A server given shards acts as a mongos for what a client of a sharded cluster sees
// of one: hello's msg "isdbgrid" (the driver then treats it as a mongos), listShards
// naming the shards' replica sets and members, removeShard draining a shard in two
// calls (https://www.mongodb.com/docs/manual/reference/command/removeShard/); and it
// refuses the local database, whose oplog is each shard's own.
func TestMongosListsItsShards(t *testing.T) {
	var shards []mongotest.Shard
	for i, age := range []time.Duration{50 * time.Hour, 49 * time.Hour} {
		id := fmt.Sprintf("sh%d", i)
		srv := mongotest.New(t, "a shard", mongotest.Options{ReplicaSet: id, InitiatedAgo: age})
		shards = append(shards, mongotest.Shard{ID: id, Host: id + "/" + srv.Addr()})
	}
	mongos := mongotest.New(t, "a mongos", mongotest.Options{Shards: shards})
	if strings.Contains(mongos.URI(), "replicaSet") {
		t.Fatalf("a mongos's URI names a replica set: %s", mongos.URI())
	}
	c := connect(t, mongos.URI())
	cx := ctx(t)
	admin := c.Database("admin")

	var hello struct {
		Msg     string `bson:"msg"`
		SetName string `bson:"setName"`
		Primary bool   `bson:"isWritablePrimary"`
	}
	must(t, admin.RunCommand(cx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello))
	if hello.Msg != "isdbgrid" || hello.SetName != "" || !hello.Primary {
		t.Fatalf("hello of a mongos: %+v", hello)
	}
	// Data commands work through it, as through any mongos.
	coll := c.Database("app").Collection("c")
	_, err := coll.InsertOne(cx, bson.D{{Key: "_id", Value: 1}})
	must(t, err)
	if n, err := coll.CountDocuments(cx, bson.D{}); err != nil || n != 1 {
		t.Fatalf("count through the mongos: %d, %v", n, err)
	}

	listed := func() map[string]bson.Raw {
		t.Helper()
		var res struct {
			Shards []bson.Raw `bson:"shards"`
		}
		must(t, admin.RunCommand(cx, bson.D{{Key: "listShards", Value: 1}}).Decode(&res))
		out := map[string]bson.Raw{}
		for _, sh := range res.Shards {
			out[sh.Lookup("_id").StringValue()] = sh
		}
		return out
	}
	got := listed()
	for _, sh := range shards {
		if host := got[sh.ID].Lookup("host").StringValue(); host != sh.Host {
			t.Fatalf("listShards: %s has host %q, want %q", sh.ID, host, sh.Host)
		}
		// The host names the shard's replica set and its members: a client reaches it.
		set, members, _ := strings.Cut(sh.Host, "/")
		shard := connect(t, "mongodb://"+members+"/?replicaSet="+set)
		age := time.Since(time.Unix(int64(entryTS(t, oplogEntry(t, shard, 1)).T), 0))
		if age < 48*time.Hour {
			t.Fatalf("%s: its oplog's first entry is %v old, want its initiation's", sh.ID, age)
		}
	}

	for what, r := range map[string]struct {
		db   string
		cmd  bson.D
		code int
	}{
		"the local database": {"local", bson.D{{Key: "find", Value: "oplog.rs"}}, 20},
		"replSetGetConfig":   {"admin", bson.D{{Key: "replSetGetConfig", Value: 1}}, 59},
		"shardCollection":    {"admin", bson.D{{Key: "shardCollection", Value: "app.c"}, {Key: "key", Value: bson.D{{Key: "_id", Value: 1}}}}, 115},
		"an unknown shard":   {"admin", bson.D{{Key: "removeShard", Value: "sh9"}}, 70},
	} {
		if err := c.Database(r.db).RunCommand(cx, r.cmd).Err(); codeOf(err) != r.code {
			t.Errorf("%s through the mongos: err = %v, want %d", what, err, r.code)
		}
	}

	var removal struct {
		State string `bson:"state"`
	}
	must(t, admin.RunCommand(cx, bson.D{{Key: "removeShard", Value: "sh1"}}).Decode(&removal))
	if draining, _ := listed()["sh1"].Lookup("draining").BooleanOK(); removal.State != "started" || !draining {
		t.Fatalf("removeShard's first call: state %q, listed draining %v; want started and draining", removal.State, draining)
	}
	must(t, admin.RunCommand(cx, bson.D{{Key: "removeShard", Value: "sh1"}}).Decode(&removal))
	if _, still := listed()["sh1"]; removal.State != "completed" || still {
		t.Fatalf("removeShard's second call: state %q, still listed %v; want completed and gone", removal.State, still)
	}

	// A replica set's member has no listShards.
	shard0 := connect(t, "mongodb://"+strings.SplitN(shards[0].Host, "/", 2)[1]+"/?replicaSet=sh0")
	if err := shard0.Database("admin").RunCommand(cx, bson.D{{Key: "listShards", Value: 1}}).Err(); codeOf(err) != 59 {
		t.Fatalf("listShards on a replica set member: err = %v, want 59", err)
	}
}
