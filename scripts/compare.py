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
# # Compare the grid
#
# Asks MLflow for the runs that this build's fits logged and ranks them by the
# cross-validated mean of `metric`, highest first; then by its std over the
# folds, smallest first; then by run name. The held-out score is shown beside
# it but never decides: it is the unbiased estimate of how the champion will
# do. The ranking is saved as `leaderboard.csv` and logged, with its chart, as
# a run of the `<experiment>-compare` experiment. The best run's model becomes
# the `champion` of the registered model `registered_model_name`.

# %% tags=["parameters"]
upstream = ["fit-*"]
product = None
track = False
mlflow_tracking_uri = None
experiment_name = "iris-grid"
metric = "accuracy"
registered_model_name = "iris-classifier"

# %%
import pandas as pd
from IPython.display import display

import tracking
from tasks import charts

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
# ## Chart and champion

# %%
if track:
    chart = charts.leaderboard_chart(board, metric)
    champion, chart_image = tracking.record_comparison(
        mlflow_tracking_uri, experiment_name, board, metric, chart, registered_model_name
    )
    if champion.version == champion.previous_version:
        print(f"{champion.name}@{tracking.CHAMPION_ALIAS} stays version {champion.version} (run {champion.run_id})")
    else:
        was = f"version {champion.previous_version}" if champion.previous_version else "no version"
        best = board.iloc[0]
        print(f"{champion.name}@{tracking.CHAMPION_ALIAS} is now version {champion.version} "
              f"(run {champion.run_id}, best by cross-validated {metric}: "
              f"{best[f'cv_{metric}_mean']:.4f} ± {best[f'cv_{metric}_std']:.4f}; held-out {metric}: {best[metric]:.4f}); "
              f"it was {was}")
    display(chart_image)
