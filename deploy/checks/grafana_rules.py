"""Shape of the Grafana provisioning: data sources and dashboard providers parse, the dashboard's panels have
unique ids, no two panels overlap, and every query names a provisioned data source.
(Which metric names and SQL the dashboard uses is tested against the real code in test/deploy/.)
Usage: python grafana_rules.py deploy/grafana  (prints one line per problem; exit 1 if any)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml
from report import report


def problems(root: Path) -> list[str]:
    out: list[str] = []
    uids: set[str] = set()
    for f in sorted((root / "provisioning" / "datasources").glob("*.yaml")):
        doc = yaml.safe_load(f.read_text())
        for ds in doc.get("datasources", []):
            uids.add(ds["uid"])
    for f in sorted((root / "provisioning" / "dashboards").glob("*.yaml")):
        doc = yaml.safe_load(f.read_text())
        if not doc.get("providers"):
            out.append(f"{f.name}: no dashboard provider")
    dashboards = sorted((root / "dashboards").glob("*.json"))
    if not dashboards:
        out.append("no dashboard JSON")
    for f in dashboards:
        dash = json.loads(f.read_text())
        ids: set[int] = set()
        cells: dict[tuple[int, int], int] = {}
        for p in dash["panels"]:
            if p["id"] in ids:
                out.append(f"{f.name}: panel id {p['id']} is used twice")
            ids.add(p["id"])
            g = p["gridPos"]
            if g["x"] + g["w"] > 24:
                out.append(f"{f.name}: panel {p['title']!r} is wider than the grid")
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    if (x, y) in cells:
                        out.append(f"{f.name}: panel {p['title']!r} overlaps panel {cells[(x, y)]}")
                        break
                    cells[(x, y)] = p["id"]
                else:
                    continue
                break
            for t in p.get("targets", []):
                if t["datasource"]["uid"] not in uids:
                    out.append(f"{f.name}: panel {p['title']!r} queries unknown data source {t['datasource']['uid']}")
    return out


if __name__ == "__main__":
    report(problems(Path(sys.argv[1])))
