// Package verifierfixture writes migration-verifier metadata into a MongoDB database the
// way the verifier does (docs/migration-verifier.md: the generation document,
// verification_tasks, mismatches, changeReader), for the tests of the exporter's
// verifier scraper and for the end-to-end test. Production code never imports it.
package verifierfixture
