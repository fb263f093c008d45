// Package testsupport holds what the project's tests share: finding the tools of the
// Prometheus Debian packages, a log sink that tests read while code under test writes,
// and the CPU time of processes for benchmarks. Production code never imports it.
package testsupport
