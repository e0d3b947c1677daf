"""Merge one-feature trees of an exported tree ensemble into one tree per feature.

A tree whose every split tests the same input column is a step function of that column, and a sum of step
functions of one column is again one. LightGBM stumps (the shape cross-validation often picks) are such
trees: a 335-stump model on 9 columns becomes 9 trees whose depth is about log2 of the distinct thresholds,
so ONNX Runtime visits ~50 nodes per row instead of 335 and pays its per-tree overhead 9 times instead of
335 — the tree ensemble was the largest cost of batch scoring. The function computed is the same; only the
float32 order of summing leaf values changes, and export_check still compares the result with the native
pipeline.

Only trees whose splits are all `BRANCH_LEQ` with one missing-value direction are merged (what onnxmltools
writes for LightGBM); any other tree is kept as it is.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import onnx
from onnx import helper

TREE_OPS = ("TreeEnsembleClassifier", "TreeEnsembleRegressor")
NODE_ATTRS = (
    "nodes_treeids",
    "nodes_nodeids",
    "nodes_featureids",
    "nodes_modes",
    "nodes_values",
    "nodes_truenodeids",
    "nodes_falsenodeids",
    "nodes_missing_value_tracks_true",
)


@dataclass
class Compaction:
    """What merging did to one graph (recorded in bundle.json under onnx.tree_compaction)."""

    trees_before: int = 0
    trees_after: int = 0
    nodes_before: int = 0
    nodes_after: int = 0


@dataclass
class Tree:
    nodes: dict[int, tuple[bytes, int, float, int, int, int]] = field(default_factory=dict)
    leaves: dict[int, list[tuple[int, float]]] = field(default_factory=lambda: defaultdict(list))

    def signature(self) -> tuple[int, int] | None:
        """(feature, missing direction) when every split is `x <= t` on one feature in one direction."""
        branches = [n for n in self.nodes.values() if n[0] != b"LEAF"]
        if not branches:
            return None
        keys = {(n[1], n[5]) for n in branches}
        if len(keys) != 1 or any(n[0] != b"BRANCH_LEQ" for n in branches):
            return None
        return next(iter(keys))

    def split_features(self) -> set[int]:
        """The input columns the tree's splits test (empty for a constant tree)."""
        return {n[1] for n in self.nodes.values() if n[0] != b"LEAF"}

    def thresholds(self) -> list[float]:
        return [n[2] for n in self.nodes.values() if n[0] != b"LEAF"]

    @cached_property
    def root(self) -> int:
        """Computed once: leaf_at runs for every probe of every tree in a group (read trees are not changed)."""
        children = {c for n in self.nodes.values() if n[0] != b"LEAF" for c in (n[3], n[4])}
        roots = [i for i in self.nodes if i not in children]
        if len(roots) != 1:
            raise ValueError(f"tree has {len(roots)} roots")
        return roots[0]

    def leaf_at(self, x: float) -> int:
        """The leaf a finite value x reaches."""
        node = self.root
        while self.nodes[node][0] != b"LEAF":
            _, _, threshold, true_id, false_id, _ = self.nodes[node]
            node = true_id if np.float32(x) <= np.float32(threshold) else false_id
        return node


def _attrs(node: onnx.NodeProto) -> dict[str, object]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _weight_prefix(op_type: str) -> str:
    return "class" if op_type == "TreeEnsembleClassifier" else "target"


def _read_trees(attrs: dict[str, object], prefix: str) -> dict[int, Tree]:
    trees: dict[int, Tree] = defaultdict(Tree)
    columns = [attrs[name] for name in NODE_ATTRS]
    for tree_id, node_id, feature, mode, value, true_id, false_id, missing in zip(*columns, strict=True):  # type: ignore[call-overload]
        trees[tree_id].nodes[node_id] = (mode, feature, float(value), true_id, false_id, missing)
    weights = zip(
        attrs[f"{prefix}_treeids"],  # type: ignore[arg-type]
        attrs[f"{prefix}_nodeids"],  # type: ignore[arg-type]
        attrs[f"{prefix}_ids"],  # type: ignore[arg-type]
        attrs[f"{prefix}_weights"],  # type: ignore[arg-type]
        strict=True,
    )
    for tree_id, node_id, class_id, weight in weights:
        trees[tree_id].leaves[node_id].append((class_id, float(weight)))
    return trees


def _merge_group(trees: list[Tree], feature: int, missing: int) -> Tree:
    """One balanced tree over the group's distinct thresholds; each leaf holds the group's summed weights."""
    cuts = sorted(set(np.float32(t).item() for tree in trees for t in tree.thresholds()))
    # Leaf j covers (cuts[j-1], cuts[j]]; every original split compares with one of the cuts, so any value
    # of that interval (its upper end, or +inf for the last) takes the same path in every original tree.
    probes = [*cuts, float("inf")]
    sums: list[dict[int, float]] = []
    for probe in probes:
        total: dict[int, float] = defaultdict(float)
        for tree in trees:
            for class_id, weight in tree.leaves[tree.leaf_at(probe)]:
                total[class_id] += weight
        sums.append(total)
    merged = Tree()
    next_id = 0

    def build(lo: int, hi: int) -> int:
        nonlocal next_id
        node_id = next_id
        next_id += 1
        if lo == hi:
            merged.nodes[node_id] = (b"LEAF", 0, 0.0, 0, 0, 0)
            merged.leaves[node_id] = sorted(sums[lo].items())
            return node_id
        mid = (lo + hi) // 2
        merged.nodes[node_id] = (b"BRANCH_LEQ", feature, cuts[mid], 0, 0, missing)
        true_id = build(lo, mid)
        false_id = build(mid + 1, hi)
        merged.nodes[node_id] = (b"BRANCH_LEQ", feature, cuts[mid], true_id, false_id, missing)
        return node_id

    build(0, len(cuts))
    return merged


def tree_columns(trees: list[Tree], prefix: str) -> dict[str, list[object]]:
    """The node and leaf-weight attribute columns of a tree ensemble holding `trees` (tree ids = positions)."""
    columns: dict[str, list[object]] = defaultdict(list)
    for tree_id, tree in enumerate(trees):
        for node_id in sorted(tree.nodes):
            mode, feature, value, true_id, false_id, missing = tree.nodes[node_id]
            leaf = mode == b"LEAF"
            for name, item in zip(
                NODE_ATTRS,
                (tree_id, node_id, feature, mode, value, 0 if leaf else true_id, 0 if leaf else false_id, missing),
                strict=True,
            ):
                columns[name].append(item)
            for class_id, weight in tree.leaves.get(node_id, []) if leaf else []:
                columns[f"{prefix}_treeids"].append(tree_id)
                columns[f"{prefix}_nodeids"].append(node_id)
                columns[f"{prefix}_ids"].append(class_id)
                columns[f"{prefix}_weights"].append(weight)
    return columns


def read_ensemble(node: onnx.NodeProto) -> tuple[dict[str, object], dict[int, Tree]]:
    """A tree ensemble node's attributes and its trees by id."""
    attrs = _attrs(node)
    return attrs, _read_trees(attrs, _weight_prefix(node.op_type))


def _ensemble_node(node: onnx.NodeProto, trees: list[Tree], attrs: dict[str, object], prefix: str) -> onnx.NodeProto:
    columns = tree_columns(trees, prefix)
    kept = {k: v for k, v in attrs.items() if k not in columns and k != "nodes_hitrates"}
    return helper.make_node(
        node.op_type, list(node.input), list(node.output), name=node.name, domain=node.domain, **kept, **columns
    )


def compact_trees(model: onnx.ModelProto) -> Compaction:
    """Merge, in place, every group of one-feature trees (same feature, same missing direction) into one."""
    report = Compaction()
    for index, node in enumerate(model.graph.node):
        if node.op_type not in TREE_OPS or node.domain != "ai.onnx.ml":
            continue
        attrs = _attrs(node)
        if "nodes_values" not in attrs:  # thresholds stored as tensors: a layout onnxmltools does not write
            continue
        prefix = _weight_prefix(node.op_type)
        trees = _read_trees(attrs, prefix)
        groups: dict[tuple[int, int], list[Tree]] = defaultdict(list)
        rest: list[Tree] = []
        for tree_id in sorted(trees):
            signature = trees[tree_id].signature()
            (rest if signature is None else groups[signature]).append(trees[tree_id])
        merged = [_merge_group(group, *key) for key, group in sorted(groups.items())]
        result = merged + rest
        report.trees_before += len(trees)
        report.trees_after += len(result)
        report.nodes_before += sum(len(t.nodes) for t in trees.values())
        report.nodes_after += sum(len(t.nodes) for t in result)
        model.graph.node[index].CopyFrom(_ensemble_node(node, result, attrs, prefix))
    return report
