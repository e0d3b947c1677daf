"""The evaluation report of a run: PNG plots and one self-contained HTML page."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.metrics import precision_recall_curve, roc_curve

from churnops_trainer.contributions import explained_features
from churnops_trainer.features import to_model_frame
from churnops_trainer.redact import redact_url

if TYPE_CHECKING:
    from churnops_trainer.train import TrainConfig, TrainOutcome

CANDIDATE_LABELS = {
    "model": "LightGBM (calibrated)",
    "logistic": "logistic baseline",
    "original_recipe": "original recipe",
}
METRIC_KEYS = (
    "roc_auc",
    "pr_auc",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "brier",
    "lift_top10",
    "capture_top20",
)


#: Features in the importance chart, and in the direction panels and table.
TOP_FEATURES = 15
DIRECTION_FEATURES = 6
#: Value ranges per numeric feature (test-split quantiles) and categories per categorical one in the direction view.
VALUE_BINS = 5
MAX_CATEGORIES_SHOWN = 8


@dataclass(frozen=True)
class Direction:
    """One raw feature's effect on the test split: how much it moves the log-odds, and which way, per value range."""

    name: str
    label: str
    #: Mean |contribution| (log-odds of the calibrated probability) over the test rows.
    importance: float
    #: (value range or category, rows, mean contribution), in value order (categories by their mean).
    groups: list[tuple[str, int, float]]


def raw_contributions(outcome: TrainOutcome) -> tuple[list[str], np.ndarray, dict[str, np.ndarray]]:
    """Per test row, each raw feature's contribution to the calibrated log-odds, and the features' values.

    LightGBM's TreeSHAP values per transformed column (one-hot columns, imputed numbers) are summed per raw
    feature — a categorical column's one-hot group is one feature, a derived ratio its own — and scaled by the
    Platt slope, the scale of the bundle's contributions (docs/bundle.md). For an additive model (stumps) these are
    exact, as in the bundle (there centred on the training split's mean, here on the trees' training cover).
    """
    from churnops_trainer.contributions import column_groups

    features = outcome.features
    pre = outcome.pipeline.named_steps["pre"]
    calibrated = outcome.pipeline.named_steps["clf"].calibrated_classifiers_[0]
    slope = -float(calibrated.calibrators[0].a_)
    frame = to_model_frame(outcome.split.test, features)
    parts = calibrated.estimator.booster_.predict(pre.transform(frame), pred_contrib=True)[:, :-1]
    explained = explained_features(features)
    raw = np.zeros((len(frame), len(explained)))
    for column, group in enumerate(column_groups(pre, features)):
        raw[:, group] += parts[:, column]
    values: dict[str, np.ndarray] = {n: frame[n].to_numpy() for n in features.raw_columns}
    if features.ratios:
        ratio = pre.named_transformers_["ratio"].transform(frame[list(features.ratio_inputs)])
        values.update({r.name: np.asarray(ratio)[:, k] for k, r in enumerate(features.ratios)})
    return [f.name for f in explained], raw * slope, values


def _label(outcome: TrainOutcome, name: str) -> str:
    """The dataset spec's label (English, or its one label), else the column's name."""
    texts = outcome.prepared.labels.get(name) or {}
    return texts.get("") or texts.get("en") or name


def _short(x: float) -> str:
    return f"{x:.4g}"


def directions(outcome: TrainOutcome) -> list[Direction]:
    """Every raw feature, most important first, with its mean contribution per value range or category."""
    names, contributions, values = raw_contributions(outcome)
    categorical = set(outcome.features.categorical)
    out: list[Direction] = []
    for j, name in enumerate(names):
        c = contributions[:, j]
        v = values[name]
        groups: list[tuple[str, int, float]] = []
        if name in categorical:
            frame = pd.DataFrame({"v": pd.Series(v, dtype=object).fillna("(missing)").astype(str), "c": c})
            stats = frame.groupby("v")["c"].agg(["size", "mean"]).sort_values("size", ascending=False)
            top = stats.head(MAX_CATEGORIES_SHOWN).sort_values("mean")
            groups = [(str(k), int(r["size"]), float(r["mean"])) for k, r in top.iterrows()]
        else:
            numbers = np.asarray(v, dtype=np.float64)
            present = ~np.isnan(numbers)
            if present.any():
                edges = np.unique(np.quantile(numbers[present], np.linspace(0, 1, VALUE_BINS + 1)))
                if len(edges) == 1:
                    edges = np.array([edges[0], edges[0]])
                bins = np.clip(np.searchsorted(edges, numbers[present], side="right") - 1, 0, len(edges) - 2)
                for b in range(len(edges) - 1):
                    chosen = bins == b
                    if chosen.any():
                        closing = "]" if b == len(edges) - 2 else ")"
                        span = f"[{_short(edges[b])}, {_short(edges[b + 1])}{closing}"
                        groups.append((span, int(chosen.sum()), float(c[present][chosen].mean())))
            if (~present).any():
                groups.append(("(missing)", int((~present).sum()), float(c[~present].mean())))
        out.append(Direction(name, _label(outcome, name), float(np.abs(c).mean()), groups))
    return sorted(out, key=lambda d: d.importance, reverse=True)


def _direction_table(found: list[Direction]) -> str:
    rows = []
    for d in found[:DIRECTION_FEATURES]:
        cells = "; ".join(
            f'<span style="color:{"#b5443a" if m > 0 else "#2f6db5"}">{html.escape(g)}: {m:+.3f}</span> ({n})'
            for g, n, m in d.groups
        )
        label = html.escape(d.label)
        rows.append(f"<tr><th>{label}</th><td>{d.importance:.3f}</td><td style='text-align:left'>{cells}</td></tr>")
    head = "<tr><th>feature</th><th>mean |contribution|</th><th>mean contribution per value range (rows)</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    _pyplot().close(fig)
    return path.name


def _which_model(outcome: TrainOutcome) -> str:
    """Which model the test metrics describe and which one the bundle ships (train.fit_calibrated)."""
    protocol = outcome.metrics.get("protocol")
    if not protocol:
        return ""
    return (
        f"<p><b>Test metrics</b>: {html.escape(protocol['test'])}.<br><b>Shipped model</b>: "
        f"{html.escape(protocol['shipped'])}; the thresholds below are its.</p>"
    )


def _plots(directory: Path, outcome: TrainOutcome, found: list[Direction]) -> dict[str, str]:
    plt = _pyplot()
    y = outcome.split.y_test
    scores = {"model": outcome.test_scores, **outcome.baseline_scores}
    # Test scores are the evaluation model's (fit without the test rows), so its own threshold applies to them.
    threshold = outcome.metrics.get("protocol", {}).get("test_threshold", outcome.thresholds["operating"])
    files: dict[str, str] = {}

    fig, ax = plt.subplots(figsize=(5, 4))
    for key, s in scores.items():
        fpr, tpr, _ = roc_curve(y, s)
        auc = outcome.metrics["test"]["roc_auc"] if key == "model" else outcome.baselines[key]["test"]["roc_auc"]
        ax.plot(fpr, tpr, label=f"{CANDIDATE_LABELS[key]} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate (recall)", title="ROC (test)")
    ax.legend(fontsize=7)
    files["roc"] = _save(fig, directory / "roc.png")

    fig, ax = plt.subplots(figsize=(5, 4))
    for key, s in scores.items():
        precision, recall, _ = precision_recall_curve(y, s)
        ax.plot(recall, precision, label=CANDIDATE_LABELS[key])
    test = outcome.metrics["test"]
    ax.scatter([test["recall"]], [test["precision"]], color="black", zorder=3, label="operating point")
    ax.axvline(outcome.thresholds["recall_target"], ls=":", color="grey")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall (test)")
    ax.legend(fontsize=7)
    files["pr"] = _save(fig, directory / "pr.png")

    fig, ax = plt.subplots(figsize=(5, 4))
    for key, s in scores.items():
        frac, mean = calibration_curve(y, np.clip(s, 0, 1), n_bins=10, strategy="quantile")
        ax.plot(mean, frac, marker="o", ms=3, label=CANDIDATE_LABELS[key])
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(xlabel="predicted probability", ylabel="observed churn rate", title="Reliability (test)")
    ax.legend(fontsize=7)
    files["calibration"] = _save(fig, directory / "calibration.png")

    fig, ax = plt.subplots(figsize=(5, 4))
    shares = np.linspace(0, 1, 101)
    for key, s in scores.items():
        order = np.argsort(-s, kind="mergesort")
        caught = np.r_[0, np.cumsum(y[order])] / max(1, y.sum())
        ax.plot(np.linspace(0, 1, len(caught)), caught, label=CANDIDATE_LABELS[key])
    ax.plot(shares, shares, ":", color="grey", label="random")
    ax.set(
        xlabel="share of customers contacted (by score)",
        ylabel="share of churners caught",
        title="Cumulative gain (test)",
    )
    ax.legend(fontsize=7)
    files["gain"] = _save(fig, directory / "gain.png")

    fig, ax = plt.subplots(figsize=(4, 3.6))
    flagged = outcome.test_scores >= threshold
    matrix = np.array(
        [
            [np.sum(~flagged & (y == 0)), np.sum(flagged & (y == 0))],
            [np.sum(~flagged & (y == 1)), np.sum(flagged & (y == 1))],
        ]
    )
    ax.imshow(matrix, cmap="Blues")
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, str(value), ha="center", va="center", color="black")
    ax.set(
        xticks=[0, 1],
        yticks=[0, 1],
        xticklabels=["not flagged", "flagged"],
        yticklabels=["stayed", "churned"],
    )
    ax.set_title(f"Confusion at threshold {threshold:.3f}")
    files["confusion"] = _save(fig, directory / "confusion.png")

    top = found[:TOP_FEATURES]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.barh([d.label for d in reversed(top)], [d.importance for d in reversed(top)], color="#4a7ab5")
    ax.set(xlabel="mean |contribution| (log-odds, test rows)", title="Feature importance (raw features)")
    ax.tick_params(axis="y", labelsize=7)
    files["importance"] = _save(fig, directory / "importance.png")

    shown = [d for d in found[:DIRECTION_FEATURES] if d.groups]
    if shown:
        columns = min(3, len(shown))
        grid_rows = (len(shown) + columns - 1) // columns
        fig, axes = plt.subplots(grid_rows, columns, figsize=(4 * columns, 2.8 * grid_rows), squeeze=False)
        for ax, d in zip(axes.flat, shown, strict=False):
            means = [m for _, _, m in d.groups]
            ax.barh([g for g, _, _ in d.groups], means, color=["#b5443a" if m > 0 else "#2f6db5" for m in means])
            ax.axvline(0, color="grey", lw=0.8)
            ax.set_title(d.label, fontsize=9)
            ax.tick_params(labelsize=7)
        for ax in list(axes.flat)[len(shown) :]:
            ax.axis("off")
        fig.suptitle("Direction: mean contribution per value range (red raises risk, blue lowers it)", fontsize=9)
        files["direction"] = _save(fig, directory / "direction.png")

    fig, ax = plt.subplots(figsize=(7, 3.8))
    keys = ("roc_auc", "pr_auc", "accuracy", "precision", "recall", "f1")
    rows = {"model": outcome.metrics["test"], **{k: v["test"] for k, v in outcome.baselines.items()}}
    width = 0.8 / len(rows)
    for i, (key, metrics) in enumerate(rows.items()):
        ax.bar(np.arange(len(keys)) + i * width, [metrics[k] for k in keys], width, label=CANDIDATE_LABELS[key])
    ax.set_xticks(np.arange(len(keys)) + width, keys)
    ax.set(ylim=(0, 1), title="Candidates side by side (test, each at its own threshold)")
    ax.legend(fontsize=7)
    files["candidates"] = _save(fig, directory / "candidates.png")
    return files


def _table(rows: dict[str, dict[str, Any]], keys: tuple[str, ...]) -> str:
    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    body = []
    for name, metrics in rows.items():
        cells = "".join(
            f"<td>{metrics[k]:.3f}</td>" if isinstance(metrics.get(k), float | int) else "<td>–</td>" for k in keys
        )
        body.append(f"<tr><th>{html.escape(name)}</th>{cells}</tr>")
    return f"<table><tr><th></th>{head}</tr>{''.join(body)}</table>"


def write_report(directory: Path, outcome: TrainOutcome, config: TrainConfig, run_id: str) -> Path:
    """Write the plots and report.html into `directory`; returns the HTML path."""
    directory.mkdir(parents=True, exist_ok=True)
    found = directions(outcome)
    files = _plots(directory, outcome, found)
    prepared = outcome.prepared
    rows = {
        CANDIDATE_LABELS["model"]: outcome.metrics["test"],
        **{CANDIDATE_LABELS[k]: v["test"] for k, v in outcome.baselines.items()},
    }
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in outcome.metrics["notes"]) or "<li>none</li>"
    excluded = "".join(
        f"<li><code>{html.escape(k)}</code>: {html.escape(v)}</li>" for k, v in prepared.excluded.items()
    )
    candidates = "".join(
        f"<li>{c.name}: CV ROC AUC {c.roc_auc:.3f}, precision at recall ≥ {config.recall_target:.2f}: "
        f"{c.precision_at_target:.3f}, trees {int(np.mean(c.best_iterations))}"
        f"{' <b>(chosen)</b>' if c is outcome.chosen else ''}</li>"
        for c in outcome.candidates
    )
    bands = "".join(f"<li><b>{html.escape(b['name'])}</b>: probability ≥ {b['min']:.6g}</li>" for b in outcome.bands)
    images = "".join(
        f'<figure><img src="{f}" alt="{k}"><figcaption>{k}</figcaption></figure>' for k, f in files.items()
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>churnops run {html.escape(run_id)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}figure{{display:inline-block;margin:6px}}
img{{max-width:520px}}code{{background:#f3f3f3}}</style></head><body>
<h1>churnops training report</h1>
<p>Model <b>{html.escape(config.model_name)}</b>, MLflow run <code>{html.escape(run_id)}</code>.
Data: <code>{html.escape(redact_url(config.data))}</code>, {prepared.n_rows} rows, {prepared.positives} positive
(<code>{html.escape(prepared.target.column)} = {html.escape(prepared.target.positive)}</code>),
fingerprint <code>{prepared.fingerprint[:16]}…</code>.</p>
<h2>Protocol</h2><p>Stratified {config.test_size:.0%} test split (seed {config.seed}) never seen by selection;
{config.folds}-fold stratified CV on the rest chose the candidate, the number of trees (early stopping) and the
thresholds from out-of-fold predictions.
Operating threshold: highest precision with recall ≥ {config.recall_target:.2f}.</p>
{_which_model(outcome)}
<h2>Thresholds</h2><pre>{html.escape(json.dumps(outcome.thresholds, indent=1))}</pre>
<h2>Risk bands</h2><p>A customer is in the first band whose minimum the probability reaches; every customer
flagged at the operating threshold is in a band above the lowest.</p><ul>{bands}</ul>
<h2>Test metrics (each candidate at its own threshold)</h2>{_table(rows, METRIC_KEYS)}
<p>Original recipe precision at LightGBM's test recall ({outcome.metrics["test"]["recall"]:.3f}):
{outcome.baselines["original_recipe"]["test"]["precision_at_equal_recall"]:.3f}
(LightGBM: {outcome.metrics["test"]["precision"]:.3f}). Brier score before calibration
{outcome.metrics["test"]["brier_uncalibrated"]:.4f}, after {outcome.metrics["test"]["brier"]:.4f}.</p>
<h2>Notes</h2><ul>{notes}</ul>
<h2>Candidates (cross-validation)</h2><ul>{candidates}</ul>
<h2>What moves the risk (test split)</h2><p>Each raw feature's contribution to the log-odds of the
calibrated probability (a categorical column's one-hot group counted once), as in the bundle's reasons: its mean
size, and its mean per value range (test-split quantiles) or category. Positive raises the risk.</p>
{_direction_table(found)}
<h2>Excluded columns</h2><ul>{excluded or "<li>none</li>"}</ul>
<h2>Plots</h2>{images}
</body></html>
"""
    path = directory / "report.html"
    path.write_text(page, encoding="utf-8")
    (directory / "metrics.json").write_text(
        json.dumps(
            {
                "metrics": outcome.metrics,
                "baselines": outcome.baselines,
                "thresholds": outcome.thresholds,
                "bands": outcome.bands,
            },
            indent=1,
        )
    )
    return path
