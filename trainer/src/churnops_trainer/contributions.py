"""The graph's scoring head: LightGBM's trees regrouped per raw feature, then calibration on the log-odds scale.

The shipped model is LightGBM margin m(x) = c + Σ_t tree_t(x) calibrated by Platt scaling on that margin:
logit(p) = A·m(x) + B. When every tree tests columns of one raw feature only (stumps, the usual choice), m is a
sum of one step function per raw feature, F_j(x_j), and

    logit(p) = baseline + Σ_j A·(F_j(x_j) − r_j),   r_j = mean of F_j over the training split,
    baseline = A·(c + Σ_j r_j) + B                 = mean log-odds over the training split,

where A·(F_j(x_j) − r_j) is exactly feature j's interventional Shapley value with the training split as the
background (for an additive function the Shapley value of a feature is its own term minus that term's mean).
A categorical column's one-hot group is one raw feature; a derived ratio is its own feature.

When a tree tests several features (a deeper candidate won cross-validation), its contributions are still
exact: interventional TreeSHAP with the same background (the training split). A tree's Shapley vector for x
depends on x only through x's decision at each of the tree's internal nodes (with a feature "absent", the
background row's decision is used instead, at every node testing it), so each tree is re-expressed as an
equivalent tree that tests all its internal nodes (tests implied by earlier ones on the same column skipped)
and whose leaves hold that vector, one target per raw feature (shap_trees). By Shapley efficiency a tree's
vector sums to its value minus its mean over the background, so the same head computes the probability.

The graph computes this literally: a TreeEnsembleRegressor with one target per raw feature gives F_j, the rest
runs in double precision, and the probability is the sigmoid of the same sum, so `baseline + Σ contributions =
logit(probability)` holds by construction in every consumer and the golden vectors check the contributions like
the probability. A model whose trees mix features has no exact per-feature split this way: its graph has a
single-target regressor and no contribution output, and bundle.json says so; that now happens only for a tree
too large to re-express (more than MAX_SHAP_NODES internal nodes) or a split that is not `x <= t`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from sklearn.compose import ColumnTransformer

from churnops_trainer.features import FeatureSet
from churnops_trainer.tree_compact import Tree, read_ensemble, tree_columns

CONTRIBUTION_OUTPUT = "contributions"
#: Largest tree (internal nodes) shap_trees re-expresses: its equivalent tree has up to 2**n leaves.
MAX_SHAP_NODES = 10
_TREE_PARTS = "churnops_tree_parts"


@dataclass(frozen=True)
class ExplainedFeature:
    """One contribution column: a raw feature (its one-hot group for a categorical) or a derived ratio."""

    name: str
    kind: str  # numeric | categorical | derived
    definition: str | None = None
    #: For a derived ratio: numerator / (denominator + offset), so consumers can show the customer's value.
    ratio: dict[str, object] | None = None


@dataclass(frozen=True)
class Calibration:
    """Platt scaling on the margin: logit(p) = slope·margin + intercept."""

    slope: float
    intercept: float


def explained_features(features: FeatureSet) -> list[ExplainedFeature]:
    """The contribution columns, in order: numeric columns, categorical columns, derived ratios."""
    out = [ExplainedFeature(n, "numeric") for n in features.numeric]
    out += [ExplainedFeature(n, "categorical") for n in features.categorical]
    out += [
        ExplainedFeature(
            r.name,
            "derived",
            r.definition,
            {"numerator": r.numerator, "denominator": r.denominator, "offset": float(r.offset)},
        )
        for r in features.ratios
    ]
    return out


def column_groups(pre: ColumnTransformer, features: FeatureSet) -> list[int]:
    """For each transformed column (the trees' feature index), the index of its explained feature."""
    explained = {f.name: k for k, f in enumerate(explained_features(features))}
    width = sum(s.stop - s.start for s in pre.output_indices_.values())
    groups = [-1] * width
    for name, transformer, columns in pre.transformers_:
        if name == "remainder":
            continue
        span = pre.output_indices_[name]
        if name == "num":
            owners = list(columns)
        elif name == "cat":
            owners = [col for col, cats in zip(columns, transformer.categories_, strict=True) for _ in cats]
        elif name == "ratio":
            owners = [r.name for r in features.ratios]
        else:
            raise RuntimeError(f"unknown preprocessing step {name!r}")
        if len(owners) != span.stop - span.start:
            raise RuntimeError(f"step {name!r} writes {span.stop - span.start} columns for {len(owners)} features")
        for offset, owner in enumerate(owners):
            groups[span.start + offset] = explained[owner]
    if -1 in groups:
        raise RuntimeError("a transformed column belongs to no explained feature")
    return groups


def regroup(trees: dict[int, Tree], groups: Sequence[int]) -> tuple[list[Tree], float, bool]:
    """Trees with each leaf's weight sent to its tree's feature group; the constant trees' sum; additive or not.

    Not additive (a tree tests columns of two features): every tree goes to target 0.
    """
    owners: list[int | None] = []
    constant = 0.0
    for tree_id in sorted(trees):
        found = {groups[f] for f in trees[tree_id].split_features()}
        if len(found) > 1:
            owners = []
            break
        owners.append(next(iter(found)) if found else None)
    additive = len(owners) == len(trees)
    out: list[Tree] = []
    for index, tree_id in enumerate(sorted(trees)):
        tree = trees[tree_id]
        owner = owners[index] if additive else 0
        if owner is None:  # a constant tree: its (single) leaf weight joins the intercept
            constant += sum(w for weights in tree.leaves.values() for _c, w in weights)
            continue
        moved = Tree(nodes=dict(tree.nodes))
        for node_id, weights in tree.leaves.items():
            moved.leaves[node_id] = [(owner, sum(w for _c, w in weights))]
        out.append(moved)
    return out, constant, additive


class UnsupportedTree(ValueError):
    """A tree shap_trees cannot re-express (too many internal nodes, or a split other than `x <= t`)."""


def _decisions(matrix: np.ndarray, nodes: list[tuple[bytes, int, float, int, int, int]]) -> np.ndarray:
    """Each row's decision (True: the node's true branch) at each listed internal node, as ONNX Runtime takes it."""
    features = [n[1] for n in nodes]
    thresholds = np.array([n[2] for n in nodes], dtype=np.float32)
    missing_true = np.array([bool(n[5]) for n in nodes])
    columns = np.asarray(matrix[:, features], dtype=np.float32)
    with np.errstate(invalid="ignore"):
        return (columns <= thresholds) | (np.isnan(columns) & missing_true)


def _equivalent_tree(tree: Tree, internal: list[int]) -> tuple[Tree, np.ndarray]:
    """A tree testing every internal node of `tree` in turn (implied tests skipped); each leaf's decision vector.

    Leaf k of the returned tree (its k-th leaf in node-id order) has decision vector row k: for every internal
    node of `tree` (in `internal` order), whether an input reaching that leaf takes the node's true branch.
    """
    out = Tree()
    vectors: list[np.ndarray] = []
    leaf_rows: dict[int, int] = {}
    counter = [0]

    def build(level: int, bounds: dict[int, tuple[float, float, bool]], decided: list[bool]) -> int:
        node_id = counter[0]
        counter[0] += 1
        if level == len(internal):
            out.nodes[node_id] = (b"LEAF", 0, 0.0, 0, 0, 0)
            leaf_rows[node_id] = len(vectors)
            vectors.append(np.array(decided, dtype=bool))
            return node_id
        _mode, feature, value, _t, _f, missing = tree.nodes[internal[level]]
        threshold = float(np.float32(value))
        lo, hi, nan_possible = bounds.get(feature, (-math.inf, math.inf, True))
        can_true = lo < threshold or (nan_possible and bool(missing))
        can_false = hi > threshold or (nan_possible and not missing)
        if not (can_true and can_false):
            counter[0] -= 1  # no test here: the decision is implied by earlier tests of the same column
            return build(level + 1, bounds, [*decided, can_true])
        true_bounds = {**bounds, feature: (lo, min(hi, threshold), nan_possible and bool(missing))}
        false_bounds = {**bounds, feature: (max(lo, threshold), hi, nan_possible and not missing)}
        out.nodes[node_id] = (b"BRANCH_LEQ", feature, value, 0, 0, missing)
        true_id = build(level + 1, true_bounds, [*decided, True])
        false_id = build(level + 1, false_bounds, [*decided, False])
        out.nodes[node_id] = (b"BRANCH_LEQ", feature, value, true_id, false_id, missing)
        return node_id

    build(0, {}, [])
    order = [leaf_rows[n] for n in sorted(leaf_rows)]
    return out, np.stack(vectors)[order]


def _leaf_paths(tree: Tree, index: dict[int, int]) -> list[tuple[float, list[tuple[int, bool]]]]:
    """(leaf value, [(internal-node position, branch taken)]) for every leaf of `tree`."""
    paths: list[tuple[float, list[tuple[int, bool]]]] = []

    def walk(node_id: int, path: list[tuple[int, bool]]) -> None:
        mode, _feature, _value, true_id, false_id, _missing = tree.nodes[node_id]
        if mode == b"LEAF":
            paths.append((sum(w for _c, w in tree.leaves.get(node_id, [])), path))
            return
        walk(true_id, [*path, (index[node_id], True)])
        walk(false_id, [*path, (index[node_id], False)])

    walk(tree.root, [])
    return paths


def _interventional_shap(
    paths: list[tuple[float, list[tuple[int, bool]]]],
    players: np.ndarray,
    x_decisions: np.ndarray,
    z_decisions: np.ndarray,
    z_weights: np.ndarray,
    n_players: int,
) -> np.ndarray:
    """Shapley values (n_x, n_players) of one tree for inputs given by their decision vectors.

    The game for input x and background row z: v(S) = tree(x on the features in S, z elsewhere), averaged over
    the background rows. A leaf is reached in v(S) iff, for each feature tested on its path, S holds it and x
    takes the path's branches there, or S does not and z does. With A the features only x satisfies and B those
    only z satisfies (the leaf is unreachable if one satisfies neither), v(S) = value·[A ⊆ S, S ∩ B = ∅], whose
    Shapley values are value·(|A|−1)!|B|!/(|A|+|B|)! for each member of A and −value·|A|!(|B|−1)!/(|A|+|B|)!
    for each member of B (Lundberg et al.'s interventional TreeSHAP, summed over leaves and background rows).
    """
    top = x_decisions.shape[1] + 1
    factorial = np.array([math.factorial(k) for k in range(top + 1)], dtype=np.float64)
    phi = np.zeros((len(x_decisions), n_players))
    for value, path in paths:
        if value == 0.0 or not path:
            continue
        by_player: dict[int, list[tuple[int, bool]]] = defaultdict(list)
        for position, branch in path:
            by_player[int(players[position])].append((position, branch))
        owners = sorted(by_player)
        x_ok = np.stack([_satisfies(x_decisions, by_player[g]) for g in owners])[:, :, None]
        z_ok = np.stack([_satisfies(z_decisions, by_player[g]) for g in owners])[:, None, :]
        only_x, only_z = x_ok & ~z_ok, z_ok & ~x_ok
        alive = ~(~x_ok & ~z_ok).any(axis=0)
        a, b = only_x.sum(axis=0), only_z.sum(axis=0)
        total = factorial[a + b]
        weight_a = np.where(a > 0, factorial[np.maximum(a - 1, 0)] * factorial[b] / total, 0.0) * alive
        weight_b = np.where(b > 0, factorial[a] * factorial[np.maximum(b - 1, 0)] / total, 0.0) * alive
        for k, owner in enumerate(owners):
            phi[:, owner] += value * ((only_x[k] * weight_a - only_z[k] * weight_b) @ z_weights)
    return phi


def _satisfies(decisions: np.ndarray, required: list[tuple[int, bool]]) -> np.ndarray:
    positions = [p for p, _ in required]
    branches = np.array([b for _, b in required])
    return np.all(decisions[:, positions] == branches, axis=1)


def shap_trees(trees: dict[int, Tree], groups: Sequence[int], background: np.ndarray) -> tuple[list[Tree], float]:
    """Every tree as its equivalent tree with Shapley vectors in its leaves (one target per raw feature).

    `background` is the training split as the trees see it (the preprocessed matrix). Returns the trees and the
    sum over trees of each tree's mean value on the background (the margin's expected value, baseline's part).
    Raises UnsupportedTree for a tree it cannot re-express.
    """
    n_players = max(groups) + 1
    out: list[Tree] = []
    expected = 0.0
    for tree_id in sorted(trees):
        tree = trees[tree_id]
        internal = [n for n in sorted(tree.nodes) if tree.nodes[n][0] != b"LEAF"]
        if not internal:
            expected += sum(w for weights in tree.leaves.values() for _c, w in weights)
            continue
        if len(internal) > MAX_SHAP_NODES:
            raise UnsupportedTree(f"a tree has {len(internal)} internal nodes (at most {MAX_SHAP_NODES})")
        if any(tree.nodes[n][0] != b"BRANCH_LEQ" for n in internal):
            raise UnsupportedTree("a tree has a split other than x <= t")
        internal = _breadth_first(tree, internal)
        index = {n: k for k, n in enumerate(internal)}
        players = np.array([groups[tree.nodes[n][1]] for n in internal])
        patterns, counts = np.unique(
            _decisions(background, [tree.nodes[n] for n in internal]), axis=0, return_counts=True
        )
        z_weights = counts / counts.sum()
        paths = _leaf_paths(tree, index)
        for value, path in paths:
            reached = np.ones(len(patterns), dtype=bool)
            for position, branch in path:
                reached &= patterns[:, position] == branch
            expected += value * float(z_weights[reached].sum())
        equivalent, x_decisions = _equivalent_tree(tree, internal)
        phi = _interventional_shap(paths, players, x_decisions, patterns, z_weights, n_players)
        owners = sorted(set(players.tolist()))
        leaf_ids = sorted(n for n in equivalent.nodes if equivalent.nodes[n][0] == b"LEAF")
        for row, leaf_id in enumerate(leaf_ids):
            equivalent.leaves[leaf_id] = [(g, float(phi[row, g])) for g in owners]
        out.append(equivalent)
    return out, expected


def _breadth_first(tree: Tree, internal: list[int]) -> list[int]:
    """The internal nodes root first, level by level (the equivalent tree tests the original's top splits first)."""
    order: list[int] = []
    queue = [tree.root]
    while queue:
        node_id = queue.pop(0)
        spec = tree.nodes[node_id]
        if spec[0] == b"LEAF":
            continue
        order.append(node_id)
        queue += [spec[3], spec[4]]
    if sorted(order) != sorted(internal):
        raise UnsupportedTree("a tree's internal nodes are not all reachable from its root")
    return order


def _const(name: str, values: Any) -> onnx.NodeProto:
    return helper.make_node(
        "Constant", [], [name], name=name, value=numpy_helper.from_array(np.asarray(values, dtype=np.float64), name)
    )


def replace_head(
    model: onnx.ModelProto,
    groups: Sequence[int],
    calibration: Calibration,
    reference: np.ndarray | None,
    probability_output: str,
    background: np.ndarray | None = None,
) -> tuple[str | None, float]:
    """Swap the converter's TreeEnsembleClassifier and outputs for the regrouped head; returns (method, baseline).

    method: "additive" (trees regrouped per feature), "treeshap" (trees that mix features re-expressed with
    their Shapley vectors, shap_trees; needs `background`, the preprocessed training split) or None (no
    contribution output). `reference` holds r_j for the additive head (the training mean of each target's tree
    sum, margin scale); None while it is being measured (r = 0), after which the caller builds the head again.
    """
    graph = model.graph
    classifiers = [n for n in graph.node if n.op_type == "TreeEnsembleClassifier"]
    if len(classifiers) != 1:
        raise RuntimeError(f"expected one TreeEnsembleClassifier in the converted graph, found {len(classifiers)}")
    node = classifiers[0]
    attrs, trees = read_ensemble(node)
    if attrs.get("post_transform") != b"LOGISTIC" or any(c != 0 for c in attrs["class_ids"]):  # type: ignore[union-attr]
        raise RuntimeError("the converted LightGBM ensemble is not a binary margin with a logistic transform")
    regrouped, constant, additive = regroup(trees, groups)
    method: str | None = "additive" if additive else None
    if not additive and background is not None:
        try:
            regrouped, constant = shap_trees(trees, groups, background)
            method = "treeshap"
        except UnsupportedTree:
            regrouped, constant, _ = regroup(trees, groups)
    constant += float(sum(attrs.get("base_values") or [0.0]))  # type: ignore[arg-type]
    targets = max(groups) + 1 if method else 1
    if reference is None or method == "treeshap":
        reference = np.zeros(targets)
    columns = tree_columns(regrouped, "target")
    tree_input = node.input[0]
    head: list[onnx.NodeProto] = []
    if method == "treeshap":
        # Each target sums the leaves of hundreds of trees. In float32 that sum depends on the order ONNX Runtime
        # adds them in (its threads split the trees), and consumers disagreed by 1.2e-6 on Orange. With double
        # thresholds and weights (and the input cast to double, exactly) the sum is double; it is rounded to
        # float32 once, so every consumer gets the same number. Thresholds are float32 values: same decisions.
        head.append(helper.make_node("Cast", [tree_input], ["churnops_x64"], to=TensorProto.DOUBLE))
        tree_input = "churnops_x64"
        for name in ("nodes_values", "target_weights"):
            values = np.asarray(columns.pop(name), dtype=np.float64)
            columns[f"{name}_as_tensor"] = numpy_helper.from_array(values, f"{name}_as_tensor")  # type: ignore[assignment]
    regressor = helper.make_node(
        "TreeEnsembleRegressor",
        [tree_input],
        [_TREE_PARTS],
        name="churnops_trees",
        domain="ai.onnx.ml",
        n_targets=targets,
        aggregate_function="SUM",
        post_transform="NONE",
        **columns,
    )
    slope, shift = calibration.slope, calibration.intercept
    baseline = slope * (constant + float(np.sum(reference))) + shift
    head += [
        regressor,
        helper.make_node("Cast", [_TREE_PARTS], ["churnops_parts64"], to=TensorProto.DOUBLE),
        _const("churnops_reference", reference),
        helper.make_node("Sub", ["churnops_parts64", "churnops_reference"], ["churnops_centered"]),
        _const("churnops_slope", [slope]),
        helper.make_node("Mul", ["churnops_centered", "churnops_slope"], ["churnops_scaled"]),
        helper.make_node(
            "Constant", [], ["churnops_axes"], value=numpy_helper.from_array(np.array([1], dtype=np.int64))
        ),
        helper.make_node("ReduceSum", ["churnops_scaled", "churnops_axes"], ["churnops_sum"], keepdims=1),
        _const("churnops_baseline", [baseline]),
        helper.make_node("Add", ["churnops_sum", "churnops_baseline"], ["churnops_logit"]),
        helper.make_node("Sigmoid", ["churnops_logit"], ["churnops_p"]),
        _const("churnops_one", [1.0]),
        helper.make_node("Sub", ["churnops_one", "churnops_p"], ["churnops_q"]),
        helper.make_node("Concat", ["churnops_q", "churnops_p"], [probability_output], axis=1),
    ]
    outputs = [helper.make_tensor_value_info(probability_output, TensorProto.DOUBLE, [None, 2])]
    if method:
        head.append(helper.make_node("Identity", ["churnops_scaled"], [CONTRIBUTION_OUTPUT]))
        outputs.append(helper.make_tensor_value_info(CONTRIBUTION_OUTPUT, TensorProto.DOUBLE, [None, targets]))
    # Everything downstream of the classifier (its label/probability identities) is replaced by the head.
    dropped = set(node.output)
    kept = [n for n in graph.node if n is not node and not (set(n.input) & dropped)]
    del graph.node[:]
    graph.node.extend(kept + head)
    del graph.output[:]
    graph.output.extend(outputs)
    return method, baseline


def add_labels(explanations: dict[str, Any], labels: dict[str, dict[str, str]]) -> None:
    """The dataset spec's labels on bundle.json's explanation features: `label` (English, or the one label given
    for every language) and `labels` (per language, when the spec gave languages); reasons read them."""
    for feature in explanations.get("features", []):
        texts = labels.get(feature["name"])
        if not texts:
            continue
        if "" in texts:
            feature["label"] = texts[""]
            continue
        feature["label"] = texts.get("en") or next(iter(texts.values()))
        feature["labels"] = dict(sorted(texts.items()))
