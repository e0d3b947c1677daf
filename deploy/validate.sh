#!/usr/bin/env bash
# Offline checks of the deployment files (no cluster, no container engine, no network once the tools are cached):
#   compose.yaml            against the Compose Specification schema (check-jsonschema's vendored copy)
#   k8s base + production   `kustomize build`, then every object against the Kubernetes OpenAPI schemas
#                           (kubernetes-validate, strict: unknown fields fail), plus the rules in k8s_rules.py
#   prometheus              `promtool check config` and `promtool check rules`
#   grafana, workflows      JSON/YAML shape, and GitHub's workflow schema
#   ecs/*.yaml              cfn-lint, checkov (offline) and the rules in ecs_rules.py (with the docs' ECS commands);
#                           then broken copies (ecs_mutants.py) must each be refused by at least one of them
# Tools: venvs in deploy/.tools (check-jsonschema, kubernetes-validate, PyYAML; cfn-lint, checkov; from PyPI); kustomize from PATH,
# else `kubectl kustomize`, else Debian's kubernetes-client; promtool from PATH, else Debian's prometheus package
# (both unpacked into deploy/.tools with `apt-get download`, nothing installed system-wide).
# Usage: deploy/validate.sh        (exit 0 when everything validates; prints one line per check)
set -euo pipefail

DEPLOY=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$DEPLOY")
TOOLS=${CHURNOPS_DEPLOY_TOOLS:-$DEPLOY/.tools}
K8S_VERSION=1.32.0
PY_TOOLS=(check-jsonschema==0.39.0 kubernetes-validate==1.37.0 PyYAML==6.0.3)
# checkov pins its own dependency versions, so the CloudFormation tools get a venv of their own.
CFN_TOOLS=(cfn-lint==1.58.0 checkov==3.3.30 PyYAML==6.0.3)
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
failed=0
ok() { printf 'ok    %s\n' "$1"; }
bad() { printf 'FAIL  %s\n' "$1"; failed=1; }
run() { # name command... : run a check, show its output only when it fails
  local name=$1
  shift
  if "$@" >"$OUT/log" 2>&1; then ok "$name"; else bad "$name"; sed 's/^/      /' "$OUT/log" | tail -n 40; fi
}

mkdir -p "$TOOLS"
stamp="$TOOLS/venv/.installed-$(printf '%s ' "${PY_TOOLS[@]}" | sha256sum | cut -c1-12)"
if [[ ! -e $stamp ]]; then
  python3 -m venv "$TOOLS/venv"
  "$TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check "${PY_TOOLS[@]}" >"$TOOLS/pip.log" 2>&1 || { cat "$TOOLS/pip.log" >&2; exit 1; }
  touch "$stamp"
fi
PY=$TOOLS/venv/bin/python
cfn_stamp="$TOOLS/cfn-venv/.installed-$(printf '%s ' "${CFN_TOOLS[@]}" | sha256sum | cut -c1-12)"
if [[ ! -e $cfn_stamp ]]; then
  python3 -m venv "$TOOLS/cfn-venv"
  "$TOOLS/cfn-venv/bin/pip" install --quiet --disable-pip-version-check "${CFN_TOOLS[@]}" >"$TOOLS/cfn-pip.log" 2>&1 || { cat "$TOOLS/cfn-pip.log" >&2; exit 1; }
  touch "$cfn_stamp"
fi
CFN=$TOOLS/cfn-venv/bin

debian_tool() { # package path-in-package -> prints the path of the unpacked binary
  local pkg=$1 bin=$2
  if [[ ! -x $TOOLS/$pkg/$bin ]]; then
    # A new machine may have no package lists yet: as root, fetch them once and retry.
    (cd "$TOOLS" && apt-get download "$pkg" >/dev/null 2>&1) ||
      { [[ $(id -u) == 0 ]] && apt-get update -q >/dev/null 2>&1 && (cd "$TOOLS" && apt-get download "$pkg" >/dev/null 2>&1); } ||
      { echo "cannot get $pkg with apt-get download (run apt-get update first)" >&2; return 1; }
    (cd "$TOOLS" && dpkg-deb -x "${pkg}"_*.deb "$pkg" && rm -f "${pkg}"_*.deb)
  fi
  echo "$TOOLS/$pkg/$bin"
}

kustomize_build() {
  if command -v kustomize >/dev/null; then kustomize build "$1"
  elif command -v kubectl >/dev/null; then kubectl kustomize "$1"
  else "$(debian_tool kubernetes-client usr/bin/kubectl)" kustomize "$1"; fi
}

promtool_bin() {
  if command -v promtool >/dev/null; then command -v promtool; else debian_tool prometheus usr/bin/promtool; fi
}

# Compose: the spec's JSON schema, then the project's own rules (files exist, secrets only from the env file).
run "compose.yaml: Compose Specification schema" "$TOOLS/venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec "$DEPLOY/compose.yaml"
run "compose.yaml: mounts, env file, images, depends_on" "$PY" "$DEPLOY/checks/compose_rules.py" "$DEPLOY/compose.yaml"

# Kubernetes: build each kustomization, validate every object, then the project's rules.
for dir in base overlays/production; do
  name=${dir//\//-}
  if kustomize_build "$DEPLOY/k8s/$dir" >"$OUT/$name.yaml" 2>"$OUT/$name.err"; then
    ok "k8s/$dir: kustomize build ($(grep -c '^kind:' "$OUT/$name.yaml") objects)"
    run "k8s/$dir: Kubernetes $K8S_VERSION schemas (strict)" \
      "$TOOLS/venv/bin/kubernetes-validate" --strict --kubernetes-version "$K8S_VERSION" "$OUT/$name.yaml"
    run "k8s/$dir: probes, resources, security, references" "$PY" "$DEPLOY/checks/k8s_rules.py" "$OUT/$name.yaml"
  else
    bad "k8s/$dir: kustomize build"
    sed 's/^/      /' "$OUT/$name.err"
  fi
done
run "k8s/base/secret.example.yaml: Kubernetes schema" \
  "$TOOLS/venv/bin/kubernetes-validate" --strict --kubernetes-version "$K8S_VERSION" "$DEPLOY/k8s/base/secret.example.yaml"

# Prometheus and Grafana.
if PROMTOOL=$(promtool_bin); then
  # promtool resolves rule_files as written (/etc/prometheus/…): check a copy that points at the repository's file.
  sed "s#/etc/prometheus/alerts.yml#$DEPLOY/prometheus/alerts.yml#" "$DEPLOY/prometheus/prometheus.yml" >"$OUT/prometheus.yml"
  run "prometheus: promtool check config" "$PROMTOOL" check config --syntax-only "$OUT/prometheus.yml"
  run "prometheus: promtool check rules" "$PROMTOOL" check rules "$DEPLOY/prometheus/alerts.yml"
else
  bad "prometheus: no promtool"
fi
run "grafana: provisioning and dashboard" "$PY" "$DEPLOY/checks/grafana_rules.py" "$DEPLOY/grafana"

# CI/CD workflows against GitHub's schema.
run "workflows: GitHub workflow schema" "$TOOLS/venv/bin/check-jsonschema" --builtin-schema vendor.github-workflows "$ROOT"/.github/workflows/*.yml

# Review rules: every path CODEOWNERS names exists (a renamed file must not silently lose its reviewers).
codeowners_paths() {
  local missing=0 path
  while read -r path _; do
    [[ -z $path || $path == \#* ]] && continue
    [[ -e $ROOT/${path#/} ]] || { echo "CODEOWNERS names $path, which does not exist"; missing=1; }
  done <"$ROOT/.github/CODEOWNERS"
  return $missing
}
run "CODEOWNERS: every path exists" codeowners_paths

# Amazon ECS (CloudFormation). checkov runs with --skip-download: nothing leaves the machine.
for tpl in "$DEPLOY"/ecs/*.yaml; do
  name=ecs/$(basename "$tpl")
  run "$name: cfn-lint" "$CFN/cfn-lint" "$tpl"
  run "$name: checkov (CloudFormation policies)" "$CFN/checkov" -f "$tpl" --framework cloudformation --compact --quiet --skip-download
  run "$name: secrets, health checks, draining, network, schedule, docs" \
    "$CFN/python" "$DEPLOY/checks/ecs_rules.py" "$tpl" --docs "$ROOT/docs/deploy.md"
done
# The checks must fire: each deliberately broken copy of the template is refused by at least one of them.
for mutant in $("$CFN/python" "$DEPLOY/checks/ecs_mutants.py" "$DEPLOY/ecs/churnops.yaml" "$OUT/mutants"); do
  tpl=$OUT/mutants/$mutant.yaml refused=()
  "$CFN/cfn-lint" "$tpl" >/dev/null 2>&1 || refused+=(cfn-lint)
  "$CFN/checkov" -f "$tpl" --framework cloudformation --compact --quiet --skip-download >/dev/null 2>&1 || refused+=(checkov)
  "$CFN/python" "$DEPLOY/checks/ecs_rules.py" "$tpl" >"$OUT/rules.log" 2>&1 || refused+=("ecs_rules: $(head -n1 "$OUT/rules.log")")
  if ((${#refused[@]})); then ok "ecs mutant $mutant: refused by $(IFS=';'; echo "${refused[*]}")"; else bad "ecs mutant $mutant: the checks did not refuse it"; fi
done

exit $failed
