// Package e2e holds the project's end-to-end test (e2e_test.go): the real binaries
// (mongosync_exporter, oplog_collector) run against the test MongoDB server (mongotestd)
// and stand-ins for mongosync and migration-verifier's API, scraped by a real Prometheus
// with the project's rules that notifies a real Alertmanager, while scripted faults make
// the alerts fire and resolve at a webhook served by the test, and the overview's
// go/no-go is walked through every cutover blocker (cutover_test.go). It has no code of
// its own.
package e2e
