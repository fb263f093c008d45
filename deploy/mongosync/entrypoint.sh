#!/bin/sh
# Runs mongosync for the demo and starts the migration from cluster0 (source) to cluster1
# (destination) once its API answers. mongosync's API listens on localhost only, so
# socat publishes it on MONGOSYNC_API_PORT for the exporter.
set -eu
: "${MONGOSYNC_CLUSTER0:?source connection string}"
: "${MONGOSYNC_CLUSTER1:?destination connection string}"
api_port="${MONGOSYNC_API_PORT:-27182}"
local_port="${MONGOSYNC_LOCAL_PORT:-27181}"

mongosync --cluster0 "$MONGOSYNC_CLUSTER0" --cluster1 "$MONGOSYNC_CLUSTER1" \
  --port "$local_port" --acceptDisclaimer &
mongosync_pid=$!
trap 'kill -TERM "$mongosync_pid" 2>/dev/null' TERM INT

socat "TCP-LISTEN:${api_port},fork,reuseaddr" "TCP:127.0.0.1:${local_port}" &

progress="http://127.0.0.1:${local_port}/api/v1/progress"
until curl -fsS "$progress" >/dev/null 2>&1; do
  kill -0 "$mongosync_pid" 2>/dev/null || { echo "mongosync exited" >&2; exit 1; }
  sleep 2
done
if curl -fsS "$progress" | grep -q '"state":"IDLE"'; then
  echo "starting the migration cluster0 -> cluster1"
  curl -fsS -X POST -H 'Content-Type: application/json' \
    -d '{"source": "cluster0", "destination": "cluster1"}' \
    "http://127.0.0.1:${local_port}/api/v1/start"
  echo
fi
wait "$mongosync_pid"
