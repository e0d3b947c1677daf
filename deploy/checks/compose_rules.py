"""The project's own rules for deploy/compose.yaml, beyond the Compose schema.

Bind mounts and build files exist; every secret is interpolated from deploy/.env (never written in the file) and
listed in .env.example, which lists nothing unused; depends_on names real services; images carry a pinned tag.
Usage: python compose_rules.py deploy/compose.yaml  (prints one line per problem; exit 1 if any)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml
from report import report

SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_KEYS?$|DB_URL|WEBHOOK_URL", re.IGNORECASE)
VAR = re.compile(r"\$\{([A-Z0-9_]+)(?::?[-?][^}]*)?\}")


def problems(compose_path: Path) -> list[str]:
    deploy = compose_path.parent
    text = compose_path.read_text()
    doc = yaml.safe_load(text)
    services: dict = doc["services"]
    out: list[str] = []
    example = deploy / ".env.example"
    listed = {line.split("=", 1)[0] for line in example.read_text().splitlines() if line and not line.startswith("#")}
    used = set(VAR.findall(text))
    out += [f".env.example lacks {v}, which compose.yaml uses" for v in sorted(used - listed)]
    out += [f".env.example lists {v}, which compose.yaml never uses" for v in sorted(listed - used)]
    if ".env" not in (deploy / ".gitignore").read_text().split():
        out.append("deploy/.gitignore must ignore .env")
    for name, svc in services.items():
        image = svc.get("image", "")
        if ":" not in image or image.endswith(":latest"):
            out.append(f"{name}: image {image!r} has no pinned tag")
        build = svc.get("build")
        if build is not None and not (deploy / build["context"] / build["dockerfile"]).is_file():
            out.append(f"{name}: build file {build['dockerfile']} does not exist")
        for dep in svc.get("depends_on", []):
            if dep not in services:
                out.append(f"{name}: depends_on {dep}, which is no service")
        for vol in svc.get("volumes", []):
            source = vol.split(":", 1)[0]
            if source.startswith((".", "/")) and not (deploy / source).exists():
                out.append(f"{name}: bind mount {source} does not exist")
        env = svc.get("environment", {})
        for key, value in env.items() if isinstance(env, dict) else []:
            if key == "<<":
                continue
            if SECRET_NAME.search(key) and value not in (None, "") and "${" not in str(value):
                out.append(f"{name}: {key} is written in compose.yaml; take it from deploy/.env")
        if "env_file" in svc:
            out.append(f"{name}: env_file hands every secret to the container; interpolate only the ones it needs")
    for key, value in doc.get("x-churnops-env", {}).items():
        if SECRET_NAME.search(key) and "${" not in str(value) and "@" in str(value):
            out.append(f"x-churnops-env: {key} holds a credential; take it from deploy/.env")
    return out


if __name__ == "__main__":
    report(problems(Path(sys.argv[1])))
