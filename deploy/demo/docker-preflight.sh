#!/bin/sh
# Run by `make demo` and `make demo-down` before docker compose: says which part of Docker
# is missing (the CLI, the compose plugin, a running daemon), with the command that
# checks it, rather than letting docker print its usage text; and points at
# `make demo-local`, which needs only Go. COMPOSE is the Makefile's compose command.
compose=${COMPOSE:-docker compose}

missing() {
	echo "make demo needs Docker with the compose plugin, and $1" >&2
	echo "  check with: $2" >&2
	echo "To see the project live without Docker (only Go needed): make demo-local" >&2
	exit 1
}

command -v docker >/dev/null 2>&1 ||
	missing "the Docker CLI (docker) is not on PATH. Install Docker Engine: https://docs.docker.com/engine/install/" \
		"command -v docker"
$compose version >/dev/null 2>&1 ||
	missing "the compose plugin is missing: \`$compose version\` fails. Install it: https://docs.docker.com/compose/install/linux/" \
		"$compose version"
docker info >/dev/null 2>&1 ||
	missing "no Docker daemon answers: \`docker info\` fails. Start it (sudo systemctl start docker), or check that you may use it (the docker group)." \
		"docker info"
exit 0
