#!/usr/bin/env bash
# `make images`: build churnops:dev and churnops-trainer:dev from the local Debian bookworm bases (base.sh), then
# smoke-test them: the trainer image trains on a small synthetic table and verifies the bundle; the churnops image
# serves that bundle on 127.0.0.1 and answers /readyz and /v1/predict (smoke-api.mjs). Uses buildah with chroot
# isolation (no container engine is needed). One build at a time per machine (a lock in the image cache).
# Prints the timings and the image sizes at the end.
#   SPARK=0            leave the Spark client (pyspark + Java 17) out of the trainer image (default: in, as released)
#   STACK=0            skip stack-smoke.sh (MLflow server on PostgreSQL at PGHOST:PGPORT, default 127.0.0.1:5432;
#                      train + register + promote over HTTP; churnops serves `champion` resolved over REST)
#   CHURNOPS_IMAGE_CACHE  rootfs, package and lock cache (default /var/cache/churnops-images)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/deploy/images
CACHE=${CHURNOPS_IMAGE_CACHE:-/var/cache/churnops-images}
SPARK=${SPARK:-1}
STACK=${STACK:-1}
API_IMAGE=localhost/churnops:dev
TRAINER_IMAGE=localhost/churnops-trainer:dev
VERSION=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo dev)

log() { printf '[images %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
[[ $(id -u) == 0 ]] || { log "needs root (debootstrap and buildah's chroot isolation)"; exit 1; }
if ! command -v buildah >/dev/null || ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null; then
  log "installing buildah, podman and debootstrap from Debian"
  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q buildah podman debootstrap >/dev/null
fi
for tool in npm flock; do
  command -v "$tool" >/dev/null || { log "missing $tool"; exit 1; }
done

mkdir -p "$CACHE"
exec 9>"$CACHE/build.lock"
if ! flock -n 9; then
  log "another image build is running on this machine; waiting for it"
  flock 9
fi

declare -a TIMES=()
step() { # name command...
  local name=$1 t0=$SECONDS
  shift
  log "$name"
  "$@"
  TIMES+=("$(printf '%-28s %4d s' "$name" $((SECONDS - t0)))")
}

# The machine's CA bundle (it may hold a TLS-intercepting proxy's CA) reaches pip and npm as a build secret.
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
SECRET_ARGS=()
[[ -s $CA_BUNDLE ]] && SECRET_ARGS=(--secret "id=cacert,src=$CA_BUNDLE")

build() { # image dockerfile base-image extra-args...
  local image=$1 file=$2 base=$3
  shift 3
  buildah bud "${SECRET_ARGS[@]}" --isolation chroot --format docker --layers --pull-never --quiet \
    --build-arg "BASE=$base" --build-arg "VERSION=$VERSION" "$@" \
    -f "$file" -t "$image" "$ROOT" >/dev/null
}

WORK=$(mktemp -d)
CONTAINERS=()
cleanup() {
  for c in "${CONTAINERS[@]}"; do buildah rm "$c" >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

smoke_trainer() {
  local c
  c=$(buildah from --pull-never "$TRAINER_IMAGE")
  CONTAINERS+=("$c")
  mkdir -p "$WORK/trainer" && chown 10001:10001 "$WORK/trainer"
  buildah copy --quiet "$c" "$HERE/smoke-trainer.sh" /tmp/smoke-trainer.sh >/dev/null
  # The trainer's JSON log lines go to a file, shown only when the smoke test fails.
  buildah run --isolation chroot -v "$WORK/trainer:/smoke" "$c" -- sh /tmp/smoke-trainer.sh /smoke 2>"$WORK/trainer.log" ||
    { tail -n 40 "$WORK/trainer.log" >&2; return 1; }
  test -s "$WORK/trainer/bundle/bundle.json"
}

smoke_api() {
  local c
  c=$(buildah from --pull-never "$API_IMAGE")
  CONTAINERS+=("$c")
  buildah copy --quiet "$c" "$HERE/smoke-api.mjs" /tmp/smoke-api.mjs >/dev/null
  buildah run --isolation chroot -v "$WORK/trainer/bundle:/smoke/bundle:ro" "$c" -- node /tmp/smoke-api.mjs /smoke/bundle
  local user
  user=$(buildah inspect --type image --format '{{.Docker.Config.User}}' "$API_IMAGE")
  [[ $user == 10001:10001 ]] || { log "churnops:dev runs as '$user', not 10001:10001"; return 1; }
  buildah inspect --type image --format '{{.Docker.Config.Healthcheck.Test}}' "$API_IMAGE" | grep -q healthcheck.mjs ||
    { log "churnops:dev has no HEALTHCHECK"; return 1; }
}

T0=$SECONDS
step "base images" "$HERE/base.sh"
step "build churnops-trainer:dev" build "$TRAINER_IMAGE" "$ROOT/deploy/trainer.Dockerfile" localhost/churnops-base-python:3.11-bookworm --build-arg "SPARK=$SPARK"
step "build churnops:dev" build "$API_IMAGE" "$ROOT/deploy/Dockerfile" localhost/churnops-base-node:20-bookworm
step "smoke churnops-trainer:dev" smoke_trainer
step "smoke churnops:dev" smoke_api
[[ $STACK == 0 ]] || step "smoke stack (MLflow + both)" "$HERE/stack-smoke.sh"

echo "images: built and smoke-tested in $((SECONDS - T0)) s"
printf '  %s\n' "${TIMES[@]}"
buildah images --format '{{.Name}}:{{.Tag}} {{.Size}}' | awk '$1 ~ /churnops(-trainer)?:dev$/ {printf "  %-34s %s %s\n", $1, $2, $3}'
