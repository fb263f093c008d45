package mongotest

import (
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// A server given Options.Shards is a mongos, for what a client of a sharded cluster
// sees of one through the commands this project uses: hello answers with msg
// "isdbgrid" and no replica set; listShards lists the shards, which are other test
// servers (https://www.mongodb.com/docs/manual/reference/command/listShards/); removeShard
// drains a shard in two calls and removes it
// (https://www.mongodb.com/docs/manual/reference/command/removeShard/). Data commands and
// change streams are served from the server's own data, as one shard holding every
// collection would: the shards' own servers are not written to or read from through
// it. The local database, whose oplog is each shard's own, is refused, as are the
// replica-set commands a mongos lacks and the sharding commands not imitated.

// Shard is one shard of a mongos.
type Shard struct {
	// ID is the shard's name (listShards' _id).
	ID string
	// Host is "<replica set>/<host:port>,...": the shard's replica set and members.
	Host     string
	draining bool
}

// isMongos tells whether the server acts as a mongos.
func (s *Server) isMongos() bool { return len(s.opts.Shards) > 0 }

var mongosCommands = map[string]command{
	"listShards":  {run: listShards, fields: []string{"filter"}},
	"removeShard": {run: removeShard},
}

// mongosSharding are mongos's sharding commands this server does not imitate.
var mongosSharding = map[string]bool{
	"addShard": true, "addShardToZone": true, "balancerStart": true, "balancerStatus": true, "balancerStop": true,
	"enableSharding": true, "shardCollection": true, "reshardCollection": true, "moveChunk": true, "moveRange": true,
	"split": true, "mergeChunks": true, "flushRouterConfig": true, "getShardMap": true, "getShardVersion": true,
	"movePrimary": true, "refineCollectionShardKey": true, "transitionToDedicatedConfigServer": true,
}

// replicaSetOnly are commands a mongod member answers and a mongos does not know.
var replicaSetOnly = map[string]bool{"replSetGetConfig": true, "replSetGetStatus": true}

// asMongos refuses, on a mongos, what a mongos refuses or this one does not imitate.
func (cx *cmdCtx) asMongos() error {
	switch {
	case !cx.s.isMongos():
		return nil
	case mongosSharding[cx.name]:
		return unsupported("the %s command of mongos", cx.name)
	case replicaSetOnly[cx.name]:
		return errorf(codeCommandNotFound, "no such command: '%s'", cx.name)
	case cx.db == "local":
		return errorf(codeIllegalOperation, "the local database is each shard's own: read it on the shard, not through mongos")
	}
	return nil
}

// mongosHello is what a mongos's hello says before the limits every server gives:
// no replica set, and msg "isdbgrid", by which drivers tell a mongos.
func mongosHello(primaryKey string, topologyVersion bson.D) bson.D {
	return bson.D{
		{Key: primaryKey, Value: true},
		{Key: "msg", Value: "isdbgrid"},
		{Key: "topologyVersion", Value: topologyVersion},
	}
}

func (cx *cmdCtx) mongosAdmin() error {
	if !cx.s.isMongos() {
		return errorf(codeCommandNotFound, "no such command: '%s'", cx.name)
	}
	if cx.db != "admin" {
		return errorf(codeUnauthorized, "%s may only be run against the admin database.", cx.name)
	}
	return nil
}

func listShards(cx *cmdCtx) (bson.D, error) {
	if err := cx.mongosAdmin(); err != nil {
		return nil, err
	}
	if _, given := cx.field("filter"); given {
		return nil, unsupported("listShards with a filter")
	}
	shards := bson.A{}
	for _, sh := range cx.s.shards {
		doc := bson.D{{Key: "_id", Value: sh.ID}, {Key: "host", Value: sh.Host}, {Key: "state", Value: int32(1)}}
		if sh.draining {
			doc = append(doc, bson.E{Key: "draining", Value: true})
		}
		shards = append(shards, doc)
	}
	return bson.D{{Key: "shards", Value: shards}}, nil
}

// removeShard starts draining the shard at the first call; it holds no data here, so
// the next call finds it drained and removes it.
func removeShard(cx *cmdCtx) (bson.D, error) {
	if err := cx.mongosAdmin(); err != nil {
		return nil, err
	}
	id, ok := cx.arg.StringValueOK()
	if !ok {
		return nil, typeError("removeShard", cx.arg, "string")
	}
	i := slices.IndexFunc(cx.s.shards, func(sh Shard) bool { return sh.ID == id })
	switch {
	case i < 0:
		return nil, errorf(codeShardNotFound, "Shard %s not found", id)
	case !cx.s.shards[i].draining:
		cx.s.shards[i].draining = true
		return bson.D{
			{Key: "msg", Value: "draining started successfully"}, {Key: "state", Value: "started"}, {Key: "shard", Value: id},
			{Key: "note", Value: "you need to call removeShard again to determine when draining completes"},
			{Key: "dbsToMove", Value: bson.A{}}, {Key: "collectionsToMove", Value: bson.A{}},
		}, nil
	}
	cx.s.shards = slices.Delete(cx.s.shards, i, i+1)
	return bson.D{{Key: "msg", Value: "removeshard completed successfully"}, {Key: "state", Value: "completed"}, {Key: "shard", Value: id}}, nil
}
