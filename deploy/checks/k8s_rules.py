"""The project's own rules for the rendered Kubernetes manifests (the output of `kustomize build`).

The API has its probes on /readyz and /healthz, resources and a non-root security context; its Service, HPA, PDB
and NetworkPolicy select or target it; the daily CronJob forbids concurrent runs; a suspended CronJob serves as
the training Job template; every ConfigMap and PVC referenced exists; Secrets are only referenced, with keys that
secret.example.yaml documents; images carry a tag.
Usage: python k8s_rules.py rendered.yaml  (prints one line per problem; exit 1 if any)
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml
from report import report

SECRET_EXAMPLE = Path(__file__).resolve().parent.parent / "k8s" / "base" / "secret.example.yaml"


def pod_specs(obj: dict[str, Any]) -> list[dict[str, Any]]:
    kind, spec = obj["kind"], obj.get("spec", {})
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return [spec["template"]["spec"]]
    if kind == "CronJob":
        return [spec["jobTemplate"]["spec"]["template"]["spec"]]
    return []


def pod_labels(obj: dict[str, Any]) -> dict[str, str]:
    spec = obj["spec"]
    template = spec["jobTemplate"]["spec"]["template"] if obj["kind"] == "CronJob" else spec["template"]
    return template["metadata"].get("labels", {})


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items()):
        return all(
            (labels.get(e["key"]) in e["values"]) == (e["operator"] == "In")
            for e in selector.get("matchExpressions", [])
        )
    return False


def problems(objs: list[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for o in objs:
        by_kind.setdefault(o["kind"], {})[o["metadata"]["name"]] = o
    if "Secret" in by_kind:
        out.append("a Secret is rendered: secrets are referenced, created out of band (secret.example.yaml)")
    secret_keys = set(yaml.safe_load(SECRET_EXAMPLE.read_text())["stringData"])

    api = by_kind.get("Deployment", {}).get("churnops-api")
    if api is None:
        return [*out, "no Deployment churnops-api"]
    labels = pod_labels(api)
    for c in pod_specs(api)[0]["containers"]:
        if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz":
            out.append(f"churnops-api/{c['name']}: readinessProbe must GET /readyz")
        if c.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
            out.append(f"churnops-api/{c['name']}: livenessProbe must GET /healthz")
    for name, svc in by_kind.get("Service", {}).items():
        if not selects({"matchLabels": svc["spec"]["selector"]}, labels):
            out.append(f"Service {name} does not select the API pods")
    for name, hpa in by_kind.get("HorizontalPodAutoscaler", {}).items():
        if hpa["spec"]["scaleTargetRef"]["name"] not in by_kind["Deployment"]:
            out.append(f"HPA {name} targets a missing Deployment")
        if hpa["spec"]["minReplicas"] < 2:
            out.append(f"HPA {name}: fewer than 2 replicas leaves the PDB nothing to protect")
    pdbs = by_kind.get("PodDisruptionBudget", {})
    if not any(selects(p["spec"]["selector"], labels) for p in pdbs.values()):
        out.append("no PodDisruptionBudget selects the API pods")
    policies = by_kind.get("NetworkPolicy", {})
    if not any(selects(p["spec"]["podSelector"], labels) and p["spec"].get("ingress") for p in policies.values()):
        out.append("no NetworkPolicy admits traffic to the API pods")

    cron = by_kind.get("CronJob", {})
    daily = cron.get("churnops-daily")
    if daily is None or daily["spec"].get("concurrencyPolicy") != "Forbid":
        out.append("CronJob churnops-daily must exist with concurrencyPolicy Forbid")
    if not any(c["spec"].get("suspend") is True for c in cron.values()):
        out.append("no suspended CronJob to serve as the training Job template")

    # An overlay (it sets the namespace) must pin the images it deploys; the base leaves them to overlays.
    overlay = "Namespace" in by_kind
    configmaps = set(by_kind.get("ConfigMap", {}))
    claims = set(by_kind.get("PersistentVolumeClaim", {}))
    for o in objs:
        for spec in pod_specs(o):
            where = f"{o['kind']} {o['metadata']['name']}"
            sc = spec.get("securityContext", {})
            if sc.get("runAsNonRoot") is not True:
                out.append(f"{where}: pod must set runAsNonRoot")
            for v in spec.get("volumes", []):
                if "configMap" in v and v["configMap"]["name"] not in configmaps:
                    out.append(f"{where}: ConfigMap {v['configMap']['name']} is not rendered")
                if "persistentVolumeClaim" in v and v["persistentVolumeClaim"]["claimName"] not in claims:
                    out.append(f"{where}: PVC {v['persistentVolumeClaim']['claimName']} is not rendered")
            for c in spec["containers"]:
                res = c.get("resources", {})
                if not {"cpu", "memory"} <= set(res.get("requests", {})) or "memory" not in res.get("limits", {}):
                    out.append(f"{where}/{c['name']}: needs cpu and memory requests and a memory limit")
                untagged = ":" not in c["image"].rsplit("/", 1)[-1] and "@" not in c["image"]
                if untagged and overlay:
                    out.append(f"{where}/{c['name']}: image {c['image']} has no tag in an overlay")
                if c.get("securityContext", {}).get("allowPrivilegeEscalation") is not False:
                    out.append(f"{where}/{c['name']}: set allowPrivilegeEscalation: false")
                for e in c.get("env", []):
                    ref = e.get("valueFrom", {}).get("secretKeyRef")
                    if ref and (ref["name"] != "churnops-secrets" or ref["key"] not in secret_keys):
                        out.append(
                            f"{where}/{c['name']}: secret {ref['name']}/{ref['key']} is not in secret.example.yaml"
                        )
    return out


if __name__ == "__main__":
    report(problems([o for o in yaml.safe_load_all(Path(sys.argv[1]).read_text()) if o]))
