// Package logging builds the go-kit logger both binaries log with, from the
// Prometheus-style --log.level and --log.format flags, and the slog bridge that
// exporter-toolkit and promhttp need.
package logging
