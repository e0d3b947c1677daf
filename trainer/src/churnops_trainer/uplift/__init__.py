"""Uplift: learn what a retention offer changes, from churnops' own randomised campaigns (issue 19).

* ``data``: the export the TypeScript side writes from the store (one row per randomised campaign member:
  features as scored for that campaign, arm, delivery state, outcome), validated, with a clear refusal when an
  arm has too few rows or churners to learn from;
* ``learners``: T- and X-learners on LightGBM; uplift = p(churn | control) − p(churn | treated), the predicted
  reduction in churn probability if treated;
* ``metrics``: Qini curve, Qini coefficient and AUUC, bootstrap intervals, realised uplift by predicted decile;
* ``export``: the uplift bundle (one ONNX graph computing the uplift from raw columns, with its own golden
  vectors) and its verification;
* ``train``: cross-validated choice of learner, held-out evaluation against ranking by churn risk, export and
  MLflow registration under ``<model>-uplift`` with the champion gate on held-out Qini;
* ``synthetic``: known per-row treatment effects (persuadables, sure things, lost causes, sleeping dogs) for the
  benchmarks and tests.
"""
