package mongotest

import (
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/mongomigrate/observability/internal/mongotest/query"
)

// The oplog, as local.oplog.rs shows it to a monitoring user: its first entry (the
// oldest the server still holds, where its change-stream history starts: db.getReplicationInfo()'s
// tFirst, https://www.mongodb.com/docs/manual/reference/method/db.getReplicationInfo/) and
// its last (the newest write, or the periodic no-op of an idle primary). The history
// is the change log: its first entry is at the first position still resumable
// (changeLog.lost), which is an event's time once the bounded history has evicted
// older ones, else the no-op of the set's initiation or of a TruncateHistory. Only
// those two entries are served: a find sorted by {$natural: 1} or {$natural: -1} with
// limit 1; anything else on local.oplog.rs fails with 115.

// oplogNamespace is the oplog collection of a replica set member.
const oplogNamespace = "local.oplog.rs"

// Messages of the no-op entries mongod writes.
const (
	noopInitiating = "initiating set"
	noopPeriodic   = "periodic noop"
)

// isOplog tells whether the command names local.oplog.rs.
func (cx *cmdCtx) isOplog() bool {
	name, _ := cx.arg.StringValueOK()
	return cx.db == "local" && name == "oplog.rs"
}

// oplogCommand refuses every command on local.oplog.rs but find (findOplog).
func (cx *cmdCtx) oplogCommand() error {
	if cx.isOplog() && cx.name != "find" {
		return oplogOnlyFirstOrLast("the " + cx.name + " command")
	}
	return nil
}

// oplogOnlyFirstOrLast refuses what this server does not imitate of the oplog.
func oplogOnlyFirstOrLast(what string) error {
	return unsupported("%s on %s: it answers only for its first or last entry (find sorted by {$natural: 1} or {$natural: -1}, limit 1)", what, oplogNamespace)
}

// findOplog answers a find of the oplog's first or last entry.
func (cx *cmdCtx) findOplog() (bson.D, error) {
	if filter, err := cx.docArg("filter"); err != nil || len(query.Fields(filter)) > 0 {
		return nil, firstErr(err, oplogOnlyFirstOrLast("a filter"))
	}
	for _, option := range []string{"skip", "hint", "collation", "let", "tailable", "awaitData", "returnKey", "showRecordId", "min", "max", "oplogReplay"} {
		if _, given := cx.field(option); given {
			return nil, oplogOnlyFirstOrLast("the " + option + " option")
		}
	}
	newest := false
	if sort, err := cx.docArg("sort"); err != nil {
		return nil, err
	} else if fields := query.Fields(sort); len(fields) > 0 {
		if len(fields) != 1 || fields[0].Key != "$natural" || !fields[0].Val.IsNumber() || (fields[0].Val.AsInt64() != 1 && fields[0].Val.AsInt64() != -1) {
			return nil, oplogOnlyFirstOrLast("a sort other than {$natural: 1} or {$natural: -1}")
		}
		newest = fields[0].Val.AsInt64() == -1
	}
	if limit, _, err := cx.intArg("limit"); err != nil || (limit != 1 && limit != -1) {
		return nil, firstErr(err, oplogOnlyFirstOrLast("a find without limit 1"))
	}
	proj, err := cx.projectionArg("projection")
	if err != nil {
		return nil, err
	}
	entry := cx.s.oplogEdgeLocked(newest)
	if proj != nil {
		if entry, err = proj.Apply(entry); err != nil {
			return nil, err
		}
	}
	return cx.openCursor(oplogNamespace, []bsoncore.Document{entry}, 1, true, true), nil
}

// oplogEdgeLocked is the oplog's first entry, or its last (newest). Requires s.mu.
func (s *Server) oplogEdgeLocked(newest bool) bsoncore.Document {
	events := s.log.events
	first := s.log.lost.ts
	if !newest || s.clock.now() == first {
		n := 0
		for n < len(events) && events[n].ts == first {
			n++
		}
		if n == 0 {
			return oplogEntry(first, s.log.floorWall, nil, s.log.floorMsg)
		}
		return oplogEntry(first, events[0].wall, events[:n], "")
	}
	last := s.clock.now()
	n := len(events)
	for n > 0 && events[n-1].ts == last {
		n--
	}
	if n == len(events) {
		return oplogEntry(last, s.clock.wall, nil, noopPeriodic)
	}
	return oplogEntry(last, events[n].wall, events[n:], "")
}

// oplogEntry is the entry of the events of one cluster time: one operation, or the
// statements of a transaction or batched write as one applyOps command; with no
// event, a no-op with its message. It carries ts, t, v, op, ns, wall (and o for
// no-ops and applyOps), not the documents an operation wrote.
func oplogEntry(ts bson.Timestamp, wall time.Time, events []*event, msg string) bsoncore.Document {
	op, ns, o := "n", "", any(bson.D{{Key: "msg", Value: msg}})
	switch len(events) {
	case 0:
	case 1:
		op, ns = oplogOp(events[0])
		o = nil
	default:
		ops := bson.A{}
		for _, e := range events {
			eop, ens := oplogOp(e)
			ops = append(ops, bson.D{{Key: "op", Value: eop}, {Key: "ns", Value: ens}})
		}
		op, ns, o = "c", "admin.$cmd", bson.D{{Key: "applyOps", Value: ops}}
	}
	entry := bson.D{
		{Key: "op", Value: op}, {Key: "ns", Value: ns},
		{Key: "ts", Value: ts}, {Key: "t", Value: int64(1)}, {Key: "v", Value: int64(2)},
		{Key: "wall", Value: bson.NewDateTimeFromTime(wall)},
	}
	if o != nil {
		entry = append(entry, bson.E{Key: "o", Value: o})
	}
	return mustMarshal(entry)
}

// oplogOp is an event's operation as the oplog names it: i, u or d on the
// collection, c (a command) on the database.
func oplogOp(e *event) (op, ns string) {
	switch e.op {
	case "insert":
		return "i", e.db + "." + e.coll
	case "update", "replace":
		return "u", e.db + "." + e.coll
	case "delete":
		return "d", e.db + "." + e.coll
	}
	return "c", e.db + ".$cmd"
}
