#!/bin/sh
# Smoke test of the churnops-trainer image, run inside it by deploy/images/build.sh: not root, no compiler,
# then synthesize a small customer table, train on it (MLflow in a local SQLite store under CHURNOPS_HOME) and
# verify the exported bundle, which is left in $1 for the churnops image's smoke test. An image with the Spark
# client (SPARK=1) also scores the table with the bundle on Spark in local mode.
set -eu
out=$1
[ "$(id -u)" != 0 ] || { echo "smoke: FAILED: running as root" >&2; exit 1; }
for tool in cc gcc g++ c++ make; do
  if command -v "$tool" >/dev/null 2>&1; then echo "smoke: FAILED: $tool in the image" >&2; exit 1; fi
done
export CHURNOPS_HOME="$out/home"
churnops-trainer synth --rows 3000 --seed 11 --out "$out/customers.parquet" --json >"$out/synth.json"
churnops-trainer train --data "$out/customers.parquet" --target churned --positive 1 --id-col customer_id \
  --drop true_churn_prob --json >"$out/train.json"
bundle=$(python -c 'import json,sys; print(json.load(open(sys.argv[1]))["bundle_path"])' "$out/train.json")
churnops-trainer verify "$bundle" --json >/dev/null
rm -rf "$out/bundle" && cp -r "$bundle" "$out/bundle"
if python -c 'import pyspark' 2>/dev/null; then
  # A buildah chroot has no /etc/hosts entry for the machine's name, which Spark looks up: bind it to loopback.
  SPARK_LOCAL_IP=127.0.0.1 SPARK_LOCAL_HOSTNAME=localhost churnops-trainer spark-score --bundle "$bundle" --data "$out/customers.parquet" --as-of 2026-01-01 \
    --out "$out/spark-scores.parquet" --master 'local[1]' --json >"$out/spark.json"
  python - "$out/spark.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["rows_scored"] == 3000, r
print(json.dumps({"smoke": "churnops-trainer spark-score", "rows_scored": r["rows_scored"], "rows_per_second": round(r["rows_per_second"])}))
PY
fi
python - "$out/train.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
t = r["metrics"]["test"]
print(json.dumps({"smoke": "churnops-trainer", "model": r["model_name"], "version": r["version"],
                  "roc_auc": round(t["roc_auc"], 4), "recall": round(t["recall"], 4), "took_s": r["timings"]["total_s"]}))
PY
