// Package oplogstore is the one definition of the oplog store's layout: the collections
// and fields oplog_collector writes and `oplog_collector range` and `replay` read
// (layout.go, lease.go, parts.go), and the reading of it: a source's events in stream
// order, whole (read.go, event.go), its saved position (token.go), the edges of its
// window, its gaps and what writers without a lease left (inspect.go, lease.go).
// docs/oplog-store.md describes the layout for users, with its sources.
//
// # The old collector's layout
//
// The layout is that of the Python oplog collector this project replaces
// (github.com/MongoBuddy/oplog_collector), called "the old collector" wherever this code
// speaks of it, plus this project's additions: a store the old collector filled stays
// readable, and its replay tool can read what this project writes. Of that layout, the
// old collector writes:
//   - EventsCollection: one document per change event, with the first group of the
//     Field constants: _id a driver ObjectId (so a batch it writes again after a crash
//     is stored twice, under new _ids), ts a BSON Timestamp, wall a BSON Date, and
//     operation_description only for createIndexes, dropIndexes, create and modify
//     (null for a rename). None of the second group: no collection UUID, no session
//     or transaction number.
//   - TokensCollection: one document {_id: TokenID, token, updated_at}, the token of the
//     last event it stored, without cluster_time.
//
// It creates no index on the events (reading them in order sorts without one), records
// no gaps, takes no lease and cannot store an event larger than a document.
package oplogstore
