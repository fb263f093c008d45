// Package pitr is point-in-time recovery from the oplog store: the recoverable window of
// a source (Range, range.go) and the replay of its stored events onto a target cluster
// (Replay). docs/pitr.md is the runbook, and says why a replay converges.
//
// A replay runs in this order (replay.go), and changes none of the target's collections
// before the fourth step (the third records what it found in ReplayDatabase):
//  1. refuse a range the store cannot vouch for: past the checkpoint, or across a gap;
//  2. read the range's collection events: which source collection held each name when
//     (history.go);
//  3. find which source collection each of the target's collections holds, by UUID or
//     by the names at the base backup's time (target.go, base.go), or refuse; read what
//     a previous run set aside (park.go) and the deletes of capped collections
//     (capped.go);
//  4. apply the events in stream order (apply.go): document events in batches per
//     collection (batch.go, plan.go, coalesce.go), alone when the target refuses one
//     (alone.go, update_document.go, park.go), a source transaction's writes in one
//     transaction (txn.go), collection and index events alone (ddl.go, indexes.go);
//  5. finish: write the last batch, build the indexes the target refused on the way,
//     and bring back what was set aside.
//
// The applier talks to the target through the driver's own types (*mongo.Client, its
// write models and its errors), not through a narrower interface of its own: what its
// tests check (an ordered bulk write's partial failure, a duplicate key's keyPattern, a
// transaction aborted and run again) is the server's and the driver's behaviour, which
// they get from internal/mongotest through the real driver rather than from a double.
package pitr
