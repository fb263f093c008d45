// Command mongosync_exporter serves Prometheus metrics about MongoDB migrations, read at
// scrape time from three sources: each mongosync's progress API, each
// migration-verifier's metadata database (and its API), and the oplog collectors'
// heartbeat documents. Flags and wiring only; the work is in package exporter.
package main
