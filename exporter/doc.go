// Package exporter turns what the migration tools report into Prometheus metrics at
// scrape time. Each source is read by one Scraper; the Exporter runs the enabled
// scrapers concurrently for every scrape and emits const metrics only, so no series
// outlives the data it describes.
//
// The scrapers: mongosync.go reads each mongosync's progress API (decoded in
// mongosync_progress.go); heartbeat.go reads the oplog collectors' heartbeat documents;
// verifier.go reads each migration-verifier's metadata database and API. The verifier
// scraper keeps running totals of the verifier's tasks and mismatches, so that a scrape
// reads only what can still change:
//   - verifier_metadata.go: the reader of the metadata database and its caches;
//   - verifier_steady.go: what every scrape reads of the tasks;
//   - verifier_tally.go, verifier_mismatch_tally.go: the running totals, first read by
//     verifier_walk.go, with the recent documents of verifier_recent.go;
//   - verifier_summed.go, verifier_rechecks.go, verifier_namespaces.go: figures summed on
//     the server when the totals are given up;
//   - verifier_figures.go: what one read found and what it means; verifier_emit.go its
//     series; verifier_decode.go and verifier_api.go decode what the verifier writes.
//
// Around them: exporter.go serves scrapes; emit.go gathers a target's series in a
// batch that repairs label values and contains panics; onchange.go logs a condition
// once per change; mongoclient.go holds a target's MongoDB client.
package exporter
