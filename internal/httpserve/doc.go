// Package httpserve runs the HTTP side both daemons share: exporter-toolkit's listener
// (TLS and basic auth from --web.config.file), its landing page, and a graceful stop.
package httpserve
