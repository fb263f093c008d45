package mongotest

import (
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// sessionMinutes is logicalSessionTimeoutMinutes, mongod's default.
const sessionMinutes = 30

// hello takes any field: drivers add handshake fields over time
// (backpressure, ...) and servers ignore those they do not know.
var handshakeCommands = map[string]command{
	"hello":     {run: hello, freeForm: true},
	"isMaster":  {run: hello, freeForm: true},
	"ismaster":  {run: hello, freeForm: true},
	"ping":      {run: func(*cmdCtx) (bson.D, error) { return nil, nil }},
	"buildInfo": {run: buildInfo},
	"buildinfo": {run: buildInfo},
}

// hello answers as the primary of a one-member replica set. With
// topologyVersion and maxAwaitTimeMS it is the awaitable hello of the
// streaming monitor protocol: the topology never changes here, so it answers
// when maxAwaitTimeMS has passed (Server Discovery and Monitoring spec).
func hello(cx *cmdCtx) (bson.D, error) {
	if lb, _ := cx.boolArg("loadBalanced"); lb {
		return nil, errorf(codeBadValue, "The server is not configured for load balancing")
	}
	if name, ok := cx.body.Lookup("client", "application", "name").StringValueOK(); ok {
		cx.c.appName = name
	}
	topologyVersion := cx.s.topologyVersion()
	processID := topologyVersion[0].Value.(bson.ObjectID)
	if tv, err := cx.docArg("topologyVersion"); err != nil {
		return nil, err
	} else if tv != nil {
		wait, ok, err := cx.intArg("maxAwaitTimeMS")
		if err != nil {
			return nil, err
		}
		if pid, _ := tv.Lookup("processId").ObjectIDOK(); ok && pid == processID {
			deadline := time.Now().Add(time.Duration(wait) * time.Millisecond)
			for cx.waitForChange(deadline) {
			}
		}
	}
	now := cx.s.clock.now()
	wall := time.Now()
	host := cx.s.addr
	primaryKey := "isWritablePrimary"
	if cx.name != "hello" {
		primaryKey = "ismaster"
	}
	res := bson.D{
		{Key: "topologyVersion", Value: topologyVersion},
		{Key: "hosts", Value: bson.A{host}},
		{Key: "setName", Value: cx.s.opts.ReplicaSet},
		{Key: "setVersion", Value: int32(1)},
		{Key: primaryKey, Value: true},
		{Key: "secondary", Value: false},
		{Key: "primary", Value: host},
		{Key: "me", Value: host},
		{Key: "electionId", Value: bson.ObjectID{0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 1}},
		{Key: "lastWrite", Value: bson.D{
			{Key: "opTime", Value: bson.D{{Key: "ts", Value: now}, {Key: "t", Value: int64(1)}}},
			{Key: "lastWriteDate", Value: bson.NewDateTimeFromTime(wall)},
			{Key: "majorityOpTime", Value: bson.D{{Key: "ts", Value: now}, {Key: "t", Value: int64(1)}}},
			{Key: "majorityWriteDate", Value: bson.NewDateTimeFromTime(wall)},
		}},
		{Key: "readOnly", Value: false},
	}
	if cx.s.isMongos() {
		res = mongosHello(primaryKey, topologyVersion)
	}
	res = append(res, bson.D{
		{Key: "maxBsonObjectSize", Value: int32(maxBSONObjectSize)},
		{Key: "maxMessageSizeBytes", Value: int32(maxMessageSize)},
		{Key: "maxWriteBatchSize", Value: int32(100_000)},
		{Key: "localTime", Value: bson.NewDateTimeFromTime(wall)},
		{Key: "logicalSessionTimeoutMinutes", Value: int32(sessionMinutes)},
		{Key: "connectionId", Value: cx.c.id},
		{Key: "minWireVersion", Value: int32(0)},
		{Key: "maxWireVersion", Value: cx.s.release.wire},
	}...)
	if ok, _ := cx.boolArg("helloOk"); ok {
		res = append(res, bson.E{Key: "helloOk", Value: true})
	}
	return res, nil
}

// topologyVersion is the server's {processId, counter}: the topology of a
// one-member replica set never changes, only the process restarts.
func (s *Server) topologyVersion() bson.D {
	s.netMu.Lock()
	defer s.netMu.Unlock()
	return bson.D{{Key: "processId", Value: s.processID}, {Key: "counter", Value: int64(0)}}
}

func buildInfo(cx *cmdCtx) (bson.D, error) {
	r := cx.s.release
	return bson.D{
		{Key: "version", Value: r.version},
		{Key: "gitVersion", Value: "mongotest"},
		{Key: "versionArray", Value: r.array},
		{Key: "modules", Value: bson.A{}},
		{Key: "javascriptEngine", Value: "none"},
		{Key: "bits", Value: int32(64)},
		{Key: "debug", Value: false},
		{Key: "maxBsonObjectSize", Value: int32(maxBSONObjectSize)},
		{Key: "storageEngines", Value: bson.A{"mongotest"}},
	}, nil
}
