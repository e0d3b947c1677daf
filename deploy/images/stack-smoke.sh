#!/usr/bin/env bash
# The Compose stack's wiring, exercised with the built images and no container engine (buildah chroot runs share
# the host's network): an MLflow server from churnops-trainer:dev on a PostgreSQL backend (a throwaway database on
# the PostgreSQL at PGHOST:PGPORT, default 127.0.0.1:5432) with proxied artifacts, exactly as compose.yaml starts
# it; the trainer trains and registers over HTTP and promotes the version to champion; churnops:dev then serves
# `champion`, resolved and downloaded through MLflow's REST API, and answers /readyz and /v1/predict.
# Run after deploy/images/build.sh (`make images` runs it when STACK=1).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
PGUSER=${PGUSER:-root}
DB=churnops_stack_smoke_$$
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log() { printf '[stack %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

WORK=$(mktemp -d)
chmod 777 "$WORK"
CONTAINERS=()
MLFLOW_PID=
# The server runs in its own session inside the chroot (same PID namespace as here): stop its whole process group,
# since ending `buildah run` alone would leave the server and its workers running.
stop_mlflow() {
  local pgid
  pgid=$(cat "$WORK/mlflow.pgid" 2>/dev/null || true)
  if [[ -n $pgid ]]; then
    kill -TERM -- "-$pgid" 2>/dev/null || true
    for _ in $(seq 1 20); do pgrep -g "$pgid" >/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$pgid" 2>/dev/null || true
  fi
  if [[ -n $MLFLOW_PID ]]; then wait "$MLFLOW_PID" 2>/dev/null || true; fi
}
cleanup() {
  stop_mlflow
  for c in "${CONTAINERS[@]}"; do buildah rm "$c" >/dev/null 2>&1 || true; done
  psql -q -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
container() { local c; c=$(buildah from --pull-never "$1"); CONTAINERS+=("$c"); echo "$c"; }

psql -q -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d postgres -c "CREATE DATABASE $DB" >/dev/null
log "MLflow server on 127.0.0.1:$PORT, PostgreSQL backend $DB"
mlflow=$(container localhost/churnops-trainer:dev)
buildah run --isolation chroot -v "$WORK:/work" "$mlflow" -- sh -c 'setsid "$@" & echo $! >/work/mlflow.pgid; wait' sh \
  mlflow server "--backend-store-uri=postgresql+psycopg://$PGUSER@$PGHOST:$PGPORT/$DB" \
  --artifacts-destination=/work/mlartifacts --serve-artifacts --host=127.0.0.1 "--port=$PORT" --workers=1 \
  "--allowed-hosts=127.0.0.1:$PORT,localhost:$PORT" >"$WORK/mlflow.log" 2>&1 &
MLFLOW_PID=$!
for _ in $(seq 1 120); do
  python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/health', timeout=2)" 2>/dev/null && break
  kill -0 "$MLFLOW_PID" 2>/dev/null || { tail -n 30 "$WORK/mlflow.log" >&2; exit 1; }
  sleep 1
done

log "train and register over HTTP, promote to champion"
trainer=$(container localhost/churnops-trainer:dev)
buildah run --isolation chroot -v "$WORK:/work" --env "MLFLOW_TRACKING_URI=http://127.0.0.1:$PORT" --env CHURNOPS_HOME=/work/trainer-home \
  "$trainer" -- sh -c 'churnops-trainer synth --rows 2000 --seed 5 --out /work/customers.parquet --json >/dev/null &&
    churnops-trainer train --data /work/customers.parquet --target churned --positive 1 --id-col customer_id \
      --drop true_churn_prob --json >/work/train.json &&
    churnops-trainer promote --version "$(python -c "import json; print(json.load(open(\"/work/train.json\"))[\"version\"])")" --json >/dev/null' \
  2>"$WORK/trainer.log" || { tail -n 30 "$WORK/trainer.log" >&2; exit 1; }

log "churnops serves champion, resolved over MLflow's REST API"
api=$(container localhost/churnops:dev)
buildah copy --quiet "$api" "$ROOT/deploy/images/smoke-api.mjs" /tmp/smoke-api.mjs >/dev/null
buildah run --isolation chroot --env "MLFLOW_TRACKING_URI=http://127.0.0.1:$PORT" "$api" -- node /tmp/smoke-api.mjs champion
stop_mlflow
MLFLOW_PID=
pgrep -g "$(cat "$WORK/mlflow.pgid")" >/dev/null && { log "the MLflow server did not stop"; exit 1; }
log "MLflow server stopped"
