"""Merging one-feature trees keeps the function the graph computes, NaN and exact thresholds included."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from lightgbm import LGBMClassifier
from onnx import TensorProto, helper

from churnops_trainer.tree_compact import compact_trees


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})


def _regressor(trees: list[list[tuple]], leaves: list[tuple[int, int, float]]) -> onnx.ModelProto:
    """trees: per tree, nodes (id, mode, feature, threshold, true, false, missing_tracks_true)."""
    cols: dict[str, list] = {
        k: [] for k in ("treeids", "nodeids", "featureids", "modes", "values", "true", "false", "missing")
    }
    for tree_id, nodes in enumerate(trees):
        for node_id, mode, feature, value, true_id, false_id, missing in nodes:
            for key, item in zip(
                cols, (tree_id, node_id, feature, mode, value, true_id, false_id, missing), strict=True
            ):
                cols[key].append(item)
    node = helper.make_node(
        "TreeEnsembleRegressor",
        ["x"],
        ["y"],
        domain="ai.onnx.ml",
        n_targets=1,
        nodes_treeids=cols["treeids"],
        nodes_nodeids=cols["nodeids"],
        nodes_featureids=cols["featureids"],
        nodes_modes=cols["modes"],
        nodes_values=cols["values"],
        nodes_truenodeids=cols["true"],
        nodes_falsenodeids=cols["false"],
        nodes_missing_value_tracks_true=cols["missing"],
        target_treeids=[t for t, _, _ in leaves],
        target_nodeids=[n for _, n, _ in leaves],
        target_ids=[0] * len(leaves),
        target_weights=[w for _, _, w in leaves],
    )
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)])


def _stump(feature: int, threshold: float, missing: int) -> list[tuple]:
    return [
        (0, b"BRANCH_LEQ", feature, threshold, 1, 2, missing),
        (1, b"LEAF", 0, 0.0, 0, 0, 0),
        (2, b"LEAF", 0, 0.0, 0, 0, 0),
    ]


def test_hand_built_ensemble_same_outputs_with_nan_and_exact_thresholds() -> None:
    trees = [
        _stump(0, 1.5, 1),
        _stump(0, 3.0, 1),
        _stump(0, 1.5, 1),  # a repeated threshold
        _stump(0, 2.0, 0),  # NaN goes the other way: its own group
        _stump(1, -1.0, 1),
        # a two-feature tree is not one-feature: it must survive unmerged
        [
            (0, b"BRANCH_LEQ", 0, 2.5, 1, 2, 1),
            (1, b"LEAF", 0, 0.0, 0, 0, 0),
            (2, b"BRANCH_LEQ", 1, 0.0, 3, 4, 0),
            (3, b"LEAF", 0, 0.0, 0, 0, 0),
            (4, b"LEAF", 0, 0.0, 0, 0, 0),
        ],
    ]
    leaves = []
    weight = 0.1
    for tree_id, nodes in enumerate(trees):
        for node_id, mode, *_ in nodes:
            if mode == b"LEAF":
                leaves.append((tree_id, node_id, weight))
                weight = -weight * 1.7 + 0.05
    model = _regressor(trees, leaves)
    compacted = onnx.ModelProto()
    compacted.CopyFrom(model)
    report = compact_trees(compacted)
    assert (report.trees_before, report.trees_after) == (
        6,
        4,
    )  # {f0 NaN-left}, {f0 NaN-right}, {f1}, the 2-feature tree
    onnx.checker.check_model(compacted)

    values = [np.nan, -np.inf, -5, -1, -0.5, 0, 1, 1.5, 1.75, 2, 2.5, 3, 3.5, np.inf]
    grid = np.array([[a, b] for a in values for b in values], dtype=np.float32)
    expected = _run(model, grid)[0]
    got = _run(compacted, grid)[0]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_lightgbm_stumps_collapse_to_one_tree_per_feature() -> None:
    from onnxmltools.convert import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    rng = np.random.default_rng(3)
    x = rng.normal(size=(3000, 4)).astype(np.float32)
    x[rng.random(x.shape) < 0.05] = np.nan
    logit = 1.5 * np.nan_to_num(x[:, 0]) - np.abs(np.nan_to_num(x[:, 1])) + 0.5 * (x[:, 2] > 0.3)
    y = (rng.random(3000) < 1 / (1 + np.exp(-logit))).astype(int)
    for leaves, merged_all in ((2, True), (6, False)):
        clf = LGBMClassifier(n_estimators=120, num_leaves=leaves, learning_rate=0.1, verbose=-1, random_state=0).fit(
            x, y
        )
        model = convert_lightgbm(clf, initial_types=[("x", FloatTensorType([None, 4]))], zipmap=False, target_opset=15)
        compacted = onnx.ModelProto()
        compacted.CopyFrom(model)
        report = compact_trees(compacted)
        if merged_all:
            assert report.trees_after <= 8  # at most one tree per (feature, missing direction)
        assert report.nodes_after < report.nodes_before or not merged_all
        probe = rng.normal(size=(5000, 4)).astype(np.float32)
        probe[rng.random(probe.shape) < 0.1] = np.nan
        expected = _run(model, probe)[1]
        got = _run(compacted, probe)[1]
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
