// Package deploy holds the supporting files of the demo stack (docker-compose.yml at the
// repository's top): Dockerfiles, the demo config.yml, and the Prometheus, Alertmanager
// and Grafana configuration. It has no code of its own: its tests check, without a Docker
// engine, what can be checked of the stack.
package deploy
