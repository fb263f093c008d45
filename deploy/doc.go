// Package deploy holds what running the project needs besides the binaries: the
// monitoring mixin that generates the dashboards and rules (mongo-migration-mixin/), the demo
// stack's supporting files (docker-compose.yml is at the repository's top), the container
// image definition (observability/Dockerfile), the systemd units of both daemons
// (systemd/), an example web configuration, and the Prometheus, Alertmanager and Grafana
// configuration of the demo. It has no code of its own: its tests check these files, that
// the committed dashboards and rules are what the mixin renders, the release tarballs
// `make release` builds, and what can be checked of the demo without a Docker engine.
package deploy
