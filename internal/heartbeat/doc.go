// Package heartbeat is the heartbeat document oplog collectors keep in the central
// metadata collection (source_clusters_info): one document per source cluster, matched
// by name, with the collector's state under collector_status. oplog_collector writes it
// (Update) and mongosync_exporter reads it (Parse), from this one description.
//
// The layout is the old collector's (package oplogstore says which collector that is;
// docs/oplog-store.md, "Heartbeat document", describes the document for users), so that
// its UI and ours read each other's documents: times are ISO-8601 strings as Python's
// datetime.isoformat() writes them for an aware UTC time, with "+00:00" and 1-second
// precision, and updates are $set on dotted collector_status.<field> paths, so the
// fields the old manager owns are left alone. No connection string is ever written: the
// old tool kept them, with their passwords, in the same document, which is why readers
// fetch only Projection.
package heartbeat
