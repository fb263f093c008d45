// Package alerts holds the Prometheus alerting rules (alerts.yml) and recording rules
// (recording.yml), their promtool unit tests (tests/*.yml) and the Go tests that run
// promtool and keep the rules, docs/runbook.md and the unit tests consistent. It has no
// code of its own.
package alerts
