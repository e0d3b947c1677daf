#!/bin/sh
# Run in an image's build stage, in the app folder, after `npm prune --omit=dev`: keep only this platform's
# onnxruntime-node binaries (the package ships six platforms) and only better-sqlite3's compiled addon (not its
# SQLite sources and build objects), then check that both native modules still load.
set -eu
platform=$(node -p 'process.platform + "/" + process.arch')
for d in node_modules/onnxruntime-node/bin/napi-v*/*/*; do
  case "$d" in */"$platform") ;; *) rm -rf "$d" ;; esac
done
find node_modules/better-sqlite3 -mindepth 1 -maxdepth 1 ! -name build ! -name lib ! -name package.json -exec rm -rf {} +
find node_modules/better-sqlite3/build -mindepth 1 -maxdepth 2 ! -name Release ! -name better_sqlite3.node -exec rm -rf {} +
node -e "require('better-sqlite3')(':memory:').prepare('select 1').get(); require('onnxruntime-node')"
