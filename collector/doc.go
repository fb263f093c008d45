// Package collector captures the change streams of MongoDB source clusters into an oplog
// store for point-in-time recovery, in the layout of package oplogstore, without losing
// or duplicating an event: every store write is idempotent and acknowledged by a
// majority before the position that covers it is saved. One collector at a time
// captures a source (a lease); others stand by.
//
// The pipeline of one source, and where each part lives:
//
//	source (source.go)         supervisor: takes the lease or stands by (holding.go),
//	                           keeps the state (state.go, health.go), heartbeat and
//	                           status (status.go), runs one capture per lease held
//	  capture (capture.go)     finds where to start, then runs, side by side:
//	    reader (reader.go)     the change stream, as store documents (event.go) ...
//	    buffer (buffer.go)     ... bounded in events and bytes ...
//	    writer (writer.go)     ... written in batches, each with its position
//	  store (store*.go)        one source's part of the store: events, position, gaps
//
//	lease (lease.go)           one holder per source, beside the store, with an epoch
//	fence (fence.go)           every holder write checks that epoch in its transaction
//	manager (manager.go)       every configured source; reload, reset, resume, stop
//	acts (wipe.go, resume.go)  reset, de-registration and resume, fenced: through the
//	                           manager, or without a daemon (offline.go)
//	API (api.go, client.go)    the control API and its client
//
// Beside the capture, the source exports how far back its oplog reaches (headroom.go),
// what the store's gaps leave a restore (recoverable.go), and writes into its store
// that no holder made (foreign.go).
package collector
