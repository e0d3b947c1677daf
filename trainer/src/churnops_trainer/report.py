"""The evaluation report of a run: PNG plots and one self-contained HTML page."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import precision_recall_curve, roc_curve

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


def _plots(directory: Path, outcome: TrainOutcome) -> dict[str, str]:
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

    top = sorted(outcome.shap_importance.items(), key=lambda kv: kv[1], reverse=True)[:15]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.barh([k for k, _ in reversed(top)], [v for _, v in reversed(top)], color="#4a7ab5")
    ax.set(xlabel="mean |SHAP value| (log-odds, test rows)", title="Feature importance (SHAP)")
    ax.tick_params(axis="y", labelsize=7)
    files["shap"] = _save(fig, directory / "shap.png")

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
    files = _plots(directory, outcome)
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
