# ---
# jupyter:
#   jupytext:
#     notebook_metadata_filter: ploomber
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
#   ploomber: {}
# ---

# %% [markdown]
# # Compare the fits
#
# Asks MLflow for the runs that this build's full fits logged (with successive
# halving, those of the last rung, on the full resource) and ranks them by the
# cross-validated mean of `metric`, highest first; then by its std over the
# folds, smallest first; then by run name. The held-out score is shown beside
# it but never decides: it is the unbiased estimate of how the champion will
# do. The ranking is saved as `leaderboard.csv` and logged, with its chart, as
# a run of the `<experiment>-compare` experiment. The best run is then held
# against the current `champion` of `registered_model_name` on equal terms: it
# takes the alias only if its cross-validated mean beats the champion's by
# more than `min_improvement`.

# %% tags=["parameters"]
upstream = ["fit-*", "features"]
product = None
track = False
mlflow_tracking_uri = None
experiment_name = "iris-grid"
metric = "accuracy"
registered_model_name = "iris-classifier"
min_improvement = 0
test_size = 0.3
seed = 42
cv_folds = 5

# %%
import pandas as pd

import tracking
from tasks import charts, data, halving, models

# %% [markdown]
# ## The search, rung by rung
#
# With successive halving (`--env--halving true`), each rung kept the best
# 1/factor of the one before, in this report's order, for the next. The tables
# give the candidates and resource of each rung, then each candidate's
# cross-validated mean on each rung it reached (the resource in brackets); the
# chart shows how the scores moved from one rung to the next. Without
# halving, nothing here.

# %%
rungs = pd.DataFrame(halving.rungs_table(tracking.fit_records(upstream["fit-*"]), metric))
charts.rungs_summary(rungs) if len(rungs) else None

# %%
charts.rungs_scores(rungs, metric) if len(rungs) else None

# %%
charts.as_image(charts.rungs_chart(rungs, metric)) if len(rungs) else None

# %% [markdown]
# ## Leaderboard

# %%
run_ids = tracking.read_run_ids(upstream["fit-*"])
if track:
    board = tracking.leaderboard(mlflow_tracking_uri, run_ids, metric)
else:
    print("Tracking is off: there are no MLflow runs to compare and no model registry to use. "
          "Build with --env--track true to log, rank and register the grid.")
    board = pd.DataFrame(columns=["run_id", "run_name", "model_family", f"cv_{metric}_mean", f"cv_{metric}_std", metric])
board.to_csv(product["leaderboard"], index=False)
charts.leaderboard_table(board, metric)

# %% [markdown]
# ## Champion and chart
#
# When the champion was scored on other data or other folds, its configuration
# is cross-validated again on this build's folds (a run of this build) before
# the two are compared. The chart then labels the best run with the outcome:
# first champion, promoted, or a challenger that left the champion in place.

# %%
def rescore(spec):
    table = pd.read_parquet(upstream["features"])
    return models.rescore(spec, table, data.TARGET, test_size, seed, cv_folds)


if track:
    decision, chart_image = tracking.record_comparison(
        mlflow_tracking_uri, experiment_name, board, metric, charts.decided_chart(board, metric),
        registered_model_name, min_improvement, rescore, rungs,
    )
    where = f"{registered_model_name}@{tracking.CHAMPION_ALIAS}"
    if decision.outcome == "kept":
        print(f"{where} stays version {decision.version}: {decision.rule}")
    else:
        was = f"version {decision.replaced}" if decision.replaced else "no version"
        print(f"{where} is now version {decision.version} (run {decision.challenger.run_id}, "
              f"cv_{metric}_mean {decision.challenger.text()}); it was {was}: {decision.rule}")

# %%
# the cell's result rather than display()ed: the report keeps the image's alt text
chart_image if track else None
