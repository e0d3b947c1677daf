"""The graph's scoring head: LightGBM's trees regrouped per raw feature, then calibration on the log-odds scale.

The shipped model is LightGBM margin m(x) = c + Σ_t tree_t(x) calibrated by Platt scaling on that margin:
logit(p) = A·m(x) + B. When every tree tests columns of one raw feature only (stumps, the usual choice), m is a
sum of one step function per raw feature, F_j(x_j), and

    logit(p) = baseline + Σ_j A·(F_j(x_j) − r_j),   r_j = mean of F_j over the training split,
    baseline = A·(c + Σ_j r_j) + B                 = mean log-odds over the training split,

where A·(F_j(x_j) − r_j) is exactly feature j's interventional Shapley value with the training split as the
background (for an additive function the Shapley value of a feature is its own term minus that term's mean).
A categorical column's one-hot group is one raw feature; a derived ratio is its own feature.

The graph computes this literally: a TreeEnsembleRegressor with one target per raw feature gives F_j, the rest
runs in double precision, and the probability is the sigmoid of the same sum, so `baseline + Σ contributions =
logit(probability)` holds by construction in every consumer and the golden vectors check the contributions like
the probability. A model whose trees mix features has no exact per-feature split this way: its graph has a
single-target regressor and no contribution output, and bundle.json says so.
"""

from __future__ import annotations

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
) -> tuple[bool, float]:
    """Swap the converter's TreeEnsembleClassifier and outputs for the regrouped head; returns (additive, baseline).

    `reference` holds r_j (the training mean of each target's tree sum, margin scale); None while it is being
    measured (r = 0), after which the caller builds the head again with it.
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
    constant += float(sum(attrs.get("base_values") or [0.0]))  # type: ignore[arg-type]
    targets = max(groups) + 1 if additive else 1
    if reference is None:
        reference = np.zeros(targets)
    regressor = helper.make_node(
        "TreeEnsembleRegressor",
        [node.input[0]],
        [_TREE_PARTS],
        name="churnops_trees",
        domain="ai.onnx.ml",
        n_targets=targets,
        aggregate_function="SUM",
        post_transform="NONE",
        **tree_columns(regrouped, "target"),
    )
    slope, shift = calibration.slope, calibration.intercept
    baseline = slope * (constant + float(np.sum(reference))) + shift
    head = [
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
    if additive:
        head.append(helper.make_node("Identity", ["churnops_scaled"], [CONTRIBUTION_OUTPUT]))
        outputs.append(helper.make_tensor_value_info(CONTRIBUTION_OUTPUT, TensorProto.DOUBLE, [None, targets]))
    # Everything downstream of the classifier (its label/probability identities) is replaced by the head.
    dropped = set(node.output)
    kept = [n for n in graph.node if n is not node and not (set(n.input) & dropped)]
    del graph.node[:]
    graph.node.extend(kept + head)
    del graph.output[:]
    graph.output.extend(outputs)
    return additive, baseline


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
