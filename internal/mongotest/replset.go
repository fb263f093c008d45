package mongotest

import "go.mongodb.org/mongo-driver/v2/bson"

// replSetCommands reads the replica set's configuration, as a monitoring user with
// the clusterMonitor role may: the collector tells one set from another by its
// settings.replicaSetId (https://www.mongodb.com/docs/manual/reference/replica-configuration/#mongodb-rsconf-rsconf.settings.replicaSetId).
var replSetCommands = map[string]command{
	"replSetGetConfig": {run: replSetGetConfig, fields: []string{"commitmentStatus"}},
}

func replSetGetConfig(cx *cmdCtx) (bson.D, error) {
	if cx.db != "admin" {
		return nil, errorf(codeUnauthorized, "replSetGetConfig may only be run against the admin database.")
	}
	return bson.D{{Key: "config", Value: bson.D{
		{Key: "_id", Value: cx.s.opts.ReplicaSet},
		{Key: "version", Value: int32(1)},
		{Key: "term", Value: int64(1)},
		{Key: "members", Value: bson.A{bson.D{{Key: "_id", Value: int32(0)}, {Key: "host", Value: cx.s.addr}}}},
		{Key: "settings", Value: bson.D{{Key: "replicaSetId", Value: cx.s.replicaSetID}}},
	}}}, nil
}
